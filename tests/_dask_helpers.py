"""Worker-side helpers of tests/engines/test_dask.py (importable by LocalCluster worker processes).

The recording objectives run the library's objective exactly as training does (they are
called by XGBoost/LightGBM on each worker) and keep the first round's margins and
gradients in a per-process store that the test collects with ``client.run``.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from gbdt_pwiser import PWiseRObjective
from gbdt_pwiser.dask import EntireSpaceLabelObjective, GlobalPWiseRObjective, GlobalSharedCTCVRObjective

RECORD: list = []


def _record(obj, z, g, h):
    if obj.iteration_ == 1:  # the call that just ran was round 0
        RECORD.append((np.array(z, dtype=np.float64).reshape(-1), np.array(g), np.array(h)))


class RecordingGlobal(GlobalPWiseRObjective):
    def __call__(self, a, b, sample_weight=None, group=None):
        g, h = super().__call__(a, b, sample_weight, group)
        z = a if type(b).__module__.startswith(("xgboost", "lightgbm")) else b
        _record(self, z, g, h)
        return g, h


class RecordingGlobalShared(GlobalSharedCTCVRObjective):
    """The shared two-output objective with global normalisers; records (n, 2) margins and gradients."""

    def __call__(self, a, b, sample_weight=None, group=None):
        g, h = super().__call__(a, b, sample_weight, group)
        z = a if type(b).__module__.startswith(("xgboost", "lightgbm")) else b
        if self.iteration_ == 1:
            RECORD.append((np.array(z, dtype=np.float64).reshape(-1, 2), np.array(g), np.array(h)))
        return g, h


class RecordingLocal(PWiseRObjective):
    """The plain objective: normalisers from the worker's own rows (what the test must reject)."""

    def __call__(self, a, b, sample_weight=None, group=None):
        g, h = super().__call__(a, b, sample_weight, group)
        z = a if type(b).__module__.startswith(("xgboost", "lightgbm")) else b
        _record(self, z, g, h)
        return g, h


class RecordingEntireSpace(EntireSpaceLabelObjective):
    def __call__(self, a, b, sample_weight=None, group=None):
        g, h = super().__call__(a, b, sample_weight, group)
        z = a if type(b).__module__.startswith(("xgboost", "lightgbm")) else b
        _record(self, z, g, h)
        return g, h


def take_record():
    out = list(RECORD)
    RECORD.clear()
    return out


class DyingGlobal(GlobalPWiseRObjective):
    """The global objective, except that the first worker to reach round 2 exits (once: a flag file).

    The flag's path comes from the environment variable ``GBDT_PWISER_TEST_DIE_FLAG``, set
    before the cluster starts (its worker processes inherit it).
    """

    def __call__(self, a, b, sample_weight=None, group=None):
        import os

        flag = os.environ.get("GBDT_PWISER_TEST_DIE_FLAG", "")
        if self.iteration_ == 2 and flag:
            try:
                fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os._exit(1)
        return super().__call__(a, b, sample_weight, group)


def dask_model(client, **params):
    """A ``DaskCTCVRClassifier`` with ``params`` that trains on ``client`` (a property, not a parameter)."""
    from gbdt_pwiser.dask import DaskCTCVRClassifier

    model = DaskCTCVRClassifier(**params)
    model.client = client
    return model


@contextlib.contextmanager
def two_worker_client(silence_logs=logging.ERROR):
    """A client of a LocalCluster of 2 worker processes × 1 thread, both workers connected."""
    import distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=silence_logs
    ) as cluster:
        with distributed.Client(cluster) as c:
            c.wait_for_workers(2, timeout=60)
            yield c
