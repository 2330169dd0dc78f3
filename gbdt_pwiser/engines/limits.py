"""What the engines cannot do, each with its reason: the one place where a setting is refused.

:func:`check` runs before any data is read; a refusal is an
:class:`~gbdt_pwiser.exceptions.UnsupportedError` (a ``ValueError`` and a
``NotImplementedError``) whose message gives the reason and a way out.
:data:`REASONS` lists every refusal; ``docs/architecture.md`` explains how to
lift one when an engine learns the feature.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import UnsupportedError

__all__ = ["REASONS", "check", "refuse"]

#: (engine kind or "any", feature) -> why it is refused and what to do instead
REASONS: dict[tuple[str, str], str] = {
    ("any", "shared:backend"): (
        'structure="shared" needs backend="xgboost" (multi-output trees); {backend} has none. '
        'Use structure="chain" with backend={backend!r}'
    ),
    ("any", "shared:cvr_params"): (
        'structure="shared" trains one booster: pass its native parameters in ctr_params, not cvr_params'
    ),
    ("any", "shared:device"): (
        'structure="shared" computes its gradients on the CPU; device={device!r} is not supported (use device="cpu")'
    ),
    ("any", "shared:conversion_weight"): (
        'conversion_weight weighs the chain\'s CTR booster; structure="shared" trains one booster for both '
        'tasks (weigh its rows with sample_weight instead, or use structure="chain")'
    ),
    ("any", "shared:contributions"): (
        'predict_contributions is not available for structure="shared": XGBoost computes no SHAP values for '
        "multi-output trees (vector leaves); feature_importances() gives each feature's gain and splits"
    ),
    ("any", "device:lightgbm"): (
        'device="cuda" needs backend="xgboost": LightGBM takes a custom objective\'s gradients as host arrays '
        'only (use device="cpu"; LightGBM\'s own GPU tree learner can still be chosen with '
        'ctr_params={{"device_type": ...}})'
    ),
    ("external", "backend"): (
        "backend={backend!r} cannot fit from a ParquetLog: out-of-core training uses XGBoost's external memory "
        "(ExtMemQuantileDMatrix); LightGBM has no external-memory Dataset (it bins the whole training set in "
        'memory). Use backend="xgboost", or read the shards into memory for LightGBM'
    ),
    ("external", "shared"): (
        'structure="shared" cannot fit from a ParquetLog (XGBoost\'s external memory does not train '
        'multi-output trees with vector leaves); use structure="chain", or read the shards into memory'
    ),
    ("external", "device"): 'device={device!r}: fits from a ParquetLog run on device="cpu" only',
    ("dask", "group"): (
        "group is required when lam > 0 (lam={lam!r}): PWiseR pairs live in groups, and group={group!r} (all "
        "rows in one group) would put one group's pairs on every worker; pass per-row group ids, lam=0, or "
        "train CTCVRClassifier on one machine"
    ),
    ("dask", "eval:lightgbm"): (
        "eval_set and early_stopping_rounds are not supported with backend='lightgbm' on Dask: lightgbm.dask "
        "evaluates each worker's eval rows on their own (an AUC of part of the rows, never reduced over "
        "workers) and each worker's early-stopping callback decides alone, so workers can stop at different "
        "rounds; use backend='xgboost', or choose n_estimators on a sample with CTCVRClassifier"
    ),
    ("dask", "eval:gauc"): (
        "ctr_stopping_metric={metric!r} cannot be computed exactly on Dask (XGBoost's distributed ranking AUC "
        "is not this GAUC); use 'auc_click' or 'auc_conv'"
    ),
    ("dask", "eval:entire"): (
        "eval_set is not supported with cvr_space='entire' on Dask: that booster's metric is the AUC of "
        "pCTR*pCVR, which XGBoost cannot evaluate natively on the workers; use cvr_space='clicked'"
    ),
    ("dask", "eval:shared"): (
        'eval_set is not supported with structure="shared" on Dask: the shared booster early-stops on the '
        "AUC of σ(z)·σ(u), which XGBoost cannot evaluate natively on the workers; fit without eval_set, or "
        "with CTCVRClassifier on a sample"
    ),
}


def _refuse(kind: str, feature: str, **fmt: Any) -> UnsupportedError:
    return UnsupportedError(REASONS[(kind, feature)].format(**fmt), kind, feature)


def refuse(kind: str, feature: str, **fmt: Any) -> None:
    """Raise the :class:`~gbdt_pwiser.exceptions.UnsupportedError` of ``REASONS[(kind, feature)]``."""
    raise _refuse(kind, feature, **fmt)


def check(kind: str, est: Any, *, eval_set: Any = None, group: Any = None) -> None:
    """Refuse the settings of ``est`` that the engine ``kind`` cannot honour (before any data is read).

    Parameters
    ----------
    kind : {"memory", "external", "dask"}
        The engine's kind.
    est : CTCVRClassifier
        Its parameters are read.
    eval_set, group : optional
        The fit's arguments, where a refusal depends on them.

    Raises
    ------
    UnsupportedError
    """
    shared = est.structure == "shared"
    device = str(est.device)
    if shared:
        if est.backend != "xgboost":
            raise _refuse("any", "shared:backend", backend=est.backend)
        if est.cvr_params is not None:
            raise _refuse("any", "shared:cvr_params")
        if device != "cpu":
            raise _refuse("any", "shared:device", device=est.device)
        if getattr(est, "conversion_weight", 0.0) != 0:
            raise _refuse("any", "shared:conversion_weight")
    if est.backend == "lightgbm" and device.startswith("cuda"):
        raise _refuse("any", "device:lightgbm")
    if kind == "external":
        if est.backend != "xgboost":
            raise _refuse("external", "backend", backend=est.backend)
        if shared:
            raise _refuse("external", "shared")
        if device != "cpu":
            raise _refuse("external", "device", device=est.device)
    if kind == "dask":
        if (group is None or isinstance(group, str)) and est.lam > 0:
            raise _refuse("dask", "group", lam=est.lam, group=group)
        if eval_set is not None or est.early_stopping_rounds is not None:
            if est.backend == "lightgbm":
                raise _refuse("dask", "eval:lightgbm")
            if shared:
                raise _refuse("dask", "eval:shared")
            if est.ctr_stopping_metric not in ("auc_click", "auc_conv"):
                raise _refuse("dask", "eval:gauc", metric=est.ctr_stopping_metric)
            if est.cvr_space == "entire":
                raise _refuse("dask", "eval:entire")
