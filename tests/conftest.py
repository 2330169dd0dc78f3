import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def client():
    """The one Dask client of the tests: a LocalCluster of 2 worker processes × 1 thread, started on
    first use and shared by every test module that asks for ``client`` (a module needing a cluster of
    its own, such as one whose workers are killed, defines its own fixture)."""
    pytest.importorskip("distributed")
    from _dask_helpers import two_worker_client

    with two_worker_client() as c:
        yield c


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def make_grouped(rng, n_groups=30, size=(2, 15), conv=0.15, click=0.3):
    """Random funnel labels in random-size groups, rows shuffled (ids unsorted)."""
    sizes = rng.integers(size[0], size[1] + 1, n_groups)
    group = np.repeat(np.arange(n_groups), sizes)
    n = group.size
    u = rng.random(n)
    y = np.where(u < conv, 2, np.where(u < conv + click, 1, 0)).astype(np.int8)
    perm = rng.permutation(n)
    return y[perm], group[perm]
