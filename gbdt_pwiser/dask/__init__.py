"""PWiseR training on Dask: ``xgboost.dask`` and ``lightgbm.dask``, exact across workers.

The public face of the Dask engine (:mod:`gbdt_pwiser.engines.dask`) and of
the workers' objectives (:mod:`gbdt_pwiser.objectives.distributed`).

Needs the ``[dask]`` extra (``pip install "gbdt-pwiser[dask]"``). See
``docs/distributed.md``.

* :class:`DaskCTCVRClassifier` — the CTR → CVR chain trained on the cluster.
* :func:`read_parquet_log` — a :class:`~gbdt_pwiser.datasets.ParquetLog` as a Dask frame, read on the workers.
* :func:`partition_by_group` — every group whole in one partition, sorted inside it.
* :func:`group_statistics` — one pass: PWiseR's global normalisers, layout checked
  (:class:`GroupLayoutError` for groups to repartition).
* :class:`GlobalPWiseRObjective` — the objective each worker runs (``obj=`` / ``objective=``);
  :class:`GlobalSharedCTCVRObjective` its twin for the shared two-output booster.
* :func:`xgboost_dmatrix`, :func:`xgboost_params`, :func:`lightgbm_fit_kwargs` — booster inputs.
* :func:`entire_space_label`, :class:`EntireSpaceLabelObjective` — the entire-space
  CVR booster with pCTR carried in each row's label.
"""

from __future__ import annotations

try:
    import dask
    import dask.dataframe  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "gbdt_pwiser.dask needs dask[dataframe] and distributed: pip install 'gbdt-pwiser[dask]'"
    ) from exc

from ..engines.dask.inputs import (
    funnel_labels,
    global_qid,
    group_sizes,
    lightgbm_fit_kwargs,
    xgboost_dmatrix,
    xgboost_params,
)
from ..engines.dask.partition import GlobalStats, group_statistics, partition_by_group
from ..exceptions import GroupLayoutError
from ..objectives._adapters import GROUP_START_FIELD
from ..objectives.distributed import (
    EntireSpaceLabelObjective,
    GlobalPWiseRObjective,
    GlobalSharedCTCVRObjective,
    entire_space_label,
)
from ._estimator import DaskCTCVRClassifier
from ._read import read_parquet_log

__all__ = [
    "DaskCTCVRClassifier",
    "read_parquet_log",
    "partition_by_group",
    "group_statistics",
    "GroupLayoutError",
    "GlobalStats",
    "GlobalPWiseRObjective",
    "GlobalSharedCTCVRObjective",
    "EntireSpaceLabelObjective",
    "entire_space_label",
    "GROUP_START_FIELD",
    "funnel_labels",
    "global_qid",
    "group_sizes",
    "xgboost_dmatrix",
    "xgboost_params",
    "lightgbm_fit_kwargs",
]
