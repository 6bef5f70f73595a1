import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("RESDET_SHARED_DATA",
                             os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data (real data sets the project tests against)."""
    if not os.path.isdir(SHARED_DATA):
        pytest.fail(f"shared test data not found at {SHARED_DATA} (set RESDET_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT
