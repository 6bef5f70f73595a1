#!/usr/bin/env python
"""Thin wrapper of ``resdet.cli.complexity`` (also ``resdet complexity``); see its docstring."""

import os
import sys

# run from a clone without installing
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from resdet.cli.complexity import main  # noqa: E402  (the logic lives in resdet.cli)

if __name__ == "__main__":
    sys.exit(main())
