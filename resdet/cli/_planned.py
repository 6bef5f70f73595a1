"""Subcommands that are announced but not built yet: they answer ``--help`` with what they
will do and otherwise exit 2 with one line saying so."""
from __future__ import annotations

import argparse
import sys


def planned_main(name: str, description: str, usage: str, argv=None) -> int:
    parser = argparse.ArgumentParser(prog=f"resdet {name}", usage=usage, description=description,
                                     add_help=True)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.parse_args(argv)
    print(f"resdet {name}: not available in this version yet ({description.rstrip('.')})",
          file=sys.stderr)
    return 2
