"""High-level entry points. Each helper module adds its own import line here."""
