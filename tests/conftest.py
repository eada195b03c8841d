import os

import pytest

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))


@pytest.fixture(scope="session")
def shared_dir():
    """`../shared` beside the checkout: real data files (VALSE, SugarCrepe sample, NegCLIP TSV)."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED
