#!/usr/bin/env python
"""Thin wrapper of ``resdet.cli.train_cls`` (also ``resdet train-cls``); see its docstring."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone without installing

from resdet.cli.train_cls import main  # noqa: E402  (the logic lives in resdet.cli)

if __name__ == "__main__":
    sys.exit(main())
