#!/usr/bin/env python
"""Thin wrapper of ``resdet.cli.train_det`` (also ``resdet train-det``); see its docstring."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone without installing

from resdet.cli.train_det import *  # noqa: E402,F401,F403  (tests and scripts reach its helpers here)
from resdet.cli.train_det import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
