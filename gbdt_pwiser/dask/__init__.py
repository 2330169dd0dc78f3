"""PWiseR training on Dask: ``xgboost.dask`` and ``lightgbm.dask``, exact across workers.

Needs the ``[dask]`` extra (``pip install "gbdt-pwiser[dask]"``). See
``docs/distributed.md``.

* :class:`DaskCTCVRClassifier` — the CTR → CVR chain trained on the cluster.
* :func:`partition_by_group` — every group whole in one partition, sorted inside it.
* :func:`group_statistics` — one pass: PWiseR's global normalisers, layout checked
  (:class:`GroupLayoutError` for groups to repartition).
* :class:`GlobalPWiseRObjective` — the objective each worker runs (``obj=`` / ``objective=``).
* :func:`xgboost_dmatrix`, :func:`xgboost_params`, :func:`lightgbm_fit_kwargs` — booster inputs.
* :func:`entire_space_label`, :class:`EntireSpaceLabelObjective` — the entire-space
  CVR booster with pCTR carried in each row's label.
"""

from __future__ import annotations

try:
    import dask  # noqa: F401
    import dask.dataframe  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "gbdt_pwiser.dask needs dask[dataframe] and distributed: pip install 'gbdt-pwiser[dask]'"
    ) from exc

from ._boosters import (
    funnel_labels,
    global_qid,
    group_sizes,
    lightgbm_fit_kwargs,
    xgboost_dmatrix,
    xgboost_params,
)
from ..objectives._adapters import GROUP_START_FIELD
from ._objectives import (
    EntireSpaceLabelObjective,
    GlobalPWiseRObjective,
    entire_space_label,
)
from .._validation import GroupLayoutError
from ._partition import GlobalStats, group_statistics, partition_by_group
from ._estimator import DaskCTCVRClassifier

__all__ = [
    "DaskCTCVRClassifier",
    "partition_by_group",
    "group_statistics",
    "GroupLayoutError",
    "GlobalStats",
    "GlobalPWiseRObjective",
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
