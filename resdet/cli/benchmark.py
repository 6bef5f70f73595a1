"""Benchmarks: resdet against its peer (torchvision, pycocotools) in one run, as ratios.

resdet benchmark MODE [options]      # MODE: one of the modules in resdet/benchmarks/
resdet benchmark MODE --help
"""

import importlib
import pkgutil
import sys

import resdet.benchmarks as benchmarks
from resdet.cli._errors import command


@command("benchmark")
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    modes = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in modes:
        print("usage: resdet benchmark MODE [options]   (resdet benchmark MODE --help for its options)")
        print(__doc__)
        print("modes:", ", ".join(modes) or "none")
        return 0 if (not argv or argv[0] in ("-h", "--help")) else 2
    module = importlib.import_module(f"resdet.benchmarks.{argv[0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
