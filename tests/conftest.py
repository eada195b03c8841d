import gzip
import os
import shutil

import pytest

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.fixture(scope="session")
def shared_dir():
    """`../shared` beside the checkout: real data files (NegCLIP TSV)."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def sugarcrepe_dir():
    """The 7 official SugarCrepe files, 20 records each (tests/fixtures/sugarcrepe-sample, MIT licence)."""
    return os.path.join(FIXTURES, "sugarcrepe-sample")


@pytest.fixture(scope="session")
def valse_dir(tmp_path_factory):
    """The 11 VALSE instruments, every record, reduced to the fields the loader reads and gzipped in
    tests/fixtures/valse (MIT licence); unpacked here as the `<instrument>.json` files of a VALSE data folder."""
    root = tmp_path_factory.mktemp("valse")
    source = os.path.join(FIXTURES, "valse")
    for name in os.listdir(source):
        if name.endswith(".json.gz"):
            with gzip.open(os.path.join(source, name), "rb") as f, open(root / name[: -len(".gz")], "wb") as out:
                shutil.copyfileobj(f, out)
    return str(root)
