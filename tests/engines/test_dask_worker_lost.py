"""A Dask worker lost in the middle of training: a clear RuntimeError, never a hang.

A dedicated 2-worker LocalCluster; the CTR objective (tests/_dask_helpers.DyingGlobal) makes
the first worker that reaches round 2 exit, as a crashed or pre-empted machine would.
"""

from __future__ import annotations

import concurrent.futures
import logging

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")
pytest.importorskip("lightgbm.dask")

from _dask_helpers import DyingGlobal, dask_model  # noqa: E402

import gbdt_pwiser.engines.dask as engine_module  # noqa: E402
from gbdt_pwiser.datasets import make_ad_log  # noqa: E402


@pytest.fixture(scope="module")
def flag_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("flags")


@pytest.fixture(scope="module")
def client(flag_dir):
    mp = pytest.MonkeyPatch()
    mp.setenv("GBDT_PWISER_TEST_DIE_FLAG", str(flag_dir / "died"))  # inherited by the worker processes
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.CRITICAL
    ) as cluster:
        with distributed.Client(cluster) as c:
            yield c
    mp.undo()


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_lost_worker_is_a_clear_error(client, flag_dir, backend, monkeypatch):
    flag = flag_dir / "died"
    if flag.exists():  # the previous case killed a worker: its nanny restarts it
        flag.unlink()
        client.wait_for_workers(2, timeout=60)
    monkeypatch.setattr(engine_module, "GlobalPWiseRObjective", DyingGlobal)
    lg = make_ad_log(200, random_state=0)
    X = lg.X.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(np.float64)
    X.columns = [f"f{i}" for i in range(X.shape[1])]
    df = X.assign(y=np.asarray(lg.y, dtype=np.int8), g=np.asarray(lg.group))
    feats = list(X.columns)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    model = dask_model(client, backend=backend, n_estimators=30, max_depth=3, n_jobs=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(model.fit, ddf[feats], ddf["y"], group=ddf["g"])
        with pytest.raises(RuntimeError, match="worker was lost during training of the CTR booster") as info:
            fut.result(timeout=90)  # a hang fails the test instead of blocking it
    assert flag.exists()
    assert info.value.__cause__ is not None
