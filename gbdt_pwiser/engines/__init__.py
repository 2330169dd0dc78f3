"""Training engines: one interface, one implementation per place the rows live.

The estimators (:mod:`gbdt_pwiser.sklearn`) describe each booster to train as a
:class:`Task` and hand it to an engine; the engine trains it where the data is:

=============================  ===========================================================  =====================
engine                         rows                                                         boosters
=============================  ===========================================================  =====================
:class:`~.local.MemoryEngine`  arrays, CSR matrices, DataFrames in this process             XGBoost, LightGBM
``ExternalEngine``             a :class:`~gbdt_pwiser.datasets.ParquetLog`, out of core     XGBoost
``DaskEngine``                 dask DataFrames on a cluster                                 XGBoost, LightGBM
=============================  ===========================================================  =====================

(``ExternalEngine`` is in :mod:`.external`, ``DaskEngine`` in :mod:`.dask`,
both imported on first use.) What an engine cannot do is refused in one
place, :mod:`.limits`. The booster libraries (XGBoost, LightGBM, the shared
two-output XGBoost booster) are in :mod:`.boosters`.
"""

from __future__ import annotations

from typing import Any

from ._base import (
    Engine,
    FitResult,
    LabelSums,
    RoundGradients,
    Stopper,
    Task,
    TrainingData,
    conversion_weights,
    log_odds,
)
from .boosters import library
from .local import MemoryEngine

__all__ = [
    "Engine",
    "FitResult",
    "LabelSums",
    "MemoryEngine",
    "RoundGradients",
    "Stopper",
    "Task",
    "TrainingData",
    "conversion_weights",
    "engine_for",
    "engine_kind",
    "library",
    "log_odds",
]


def engine_kind(X: Any, client: Any = None) -> str:
    """``"dask"`` when a Dask ``client`` is given, ``"external"`` for a ParquetLog, else ``"memory"``."""
    from ..datasets.parquet_log import ParquetLog

    if client is not None:
        return "dask"
    return "external" if isinstance(X, ParquetLog) else "memory"


def engine_for(est: Any, X: Any, client: Any = None) -> Engine:
    """The engine that trains ``est`` on ``X`` (see :func:`engine_kind`).

    The booster library follows ``est.backend`` and ``est.structure``
    (``"shared"``: one two-output XGBoost booster); call
    :func:`gbdt_pwiser.engines.limits.check` first, which refuses what no
    library or engine can do.
    """
    kind = engine_kind(X, client)
    lib = library(est.backend, 2 if est.structure == "shared" else 1)
    if kind == "dask":
        from .dask import DaskEngine

        return DaskEngine(lib, client)
    if kind == "external":
        from .external import ExternalEngine

        return ExternalEngine(lib)
    return MemoryEngine(lib)
