"""``python -m resdet SUBCOMMAND ...``: the same as the ``resdet`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
