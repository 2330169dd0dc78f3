"""Objectives for workers that each hold a slice of the data (the Dask engine's; public in :mod:`gbdt_pwiser.dask`).

* :class:`GlobalPWiseRObjective` — ``PWiseRObjective`` whose normalisers
  (``W`` and the two pair totals) are the global ones, given at construction,
  so that each worker's gradients equal those of single-process training on
  the whole data. The numbers travel with the objective when Dask pickles it
  to the workers; nothing is communicated per round.
* :class:`EntireSpaceLabelObjective` — the entire-space CVR objective reading
  pCTR from the label itself (``entire_space_label``), so pCTR travels with
  each row's partition.

Neither imports dask: workers only need gbdt_pwiser, XGBoost/LightGBM and numpy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._validation import check_labels, check_margin, check_real, check_weight
from ._adapters import _CustomObjective
from ._prepare import PreparedData, prepare_ptr
from .entire_space import EntireSpaceCVRObjective, _ESMMData, check_ctr_prob
from .multitask import SharedCTCVRObjective
from .pwiser import PWiseRObjective

__all__ = ["GlobalPWiseRObjective", "GlobalSharedCTCVRObjective", "EntireSpaceLabelObjective", "entire_space_label"]

# relative slack when checking a worker's own sums against the global ones
_SUM_SLACK = 1e-9


class _GlobalNormalisers:
    """Mixin: an objective whose normalisers ``W``, ``Σ_G W_P,G·W_C,G`` and ``Σ_G W_P,G·W_N,G`` are global.

    Given at construction (``total_weight``, ``pair_weight_c``,
    ``pair_weight_n``), they replace the sums over the worker's own rows in
    every prepared data, so that each worker's gradient is, row for row, the
    one single-process training on the whole data would give.
    """

    _global_names = ("total_weight", "pair_weight_c", "pair_weight_n")
    #: the objective class a subclass globalises
    _base_objective: type[_CustomObjective]
    total_weight: float
    pair_weight_c: float
    pair_weight_n: float

    @classmethod
    def from_stats(cls, objective: Any, stats: Any) -> Any:
        """The objective ``objective`` (default: the class's base objective) with the normalisers of ``stats``."""
        base = cls._base_objective
        if objective is None:
            objective = base()
        if not isinstance(objective, base):
            raise TypeError(f"objective must be a {base.__name__}, got {type(objective).__name__}")
        params = {k: getattr(objective, k) for k in base._param_names}
        return cls(**params, **stats.normalisers())

    def _check_params(self) -> Any:
        out = super()._check_params()  # type: ignore[misc]
        check_real(self.total_weight, "total_weight", lo=0.0, lo_open=True)
        check_real(self.pair_weight_c, "pair_weight_c", lo=0.0)
        check_real(self.pair_weight_n, "pair_weight_n", lo=0.0)
        return out

    def _globalise(self, data: PreparedData) -> PreparedData:
        """Replace the local normalisers by the global ones, checking they can contain them."""
        glob = (float(self.total_weight), float(self.pair_weight_c), float(self.pair_weight_n))
        local = (data.total_weight, data.pair_weight_c, data.pair_weight_n)
        for name, lv, gv in zip(self._global_names, local, glob, strict=True):
            if lv > gv * (1.0 + _SUM_SLACK) + 1e-300:
                raise ValueError(
                    f"this worker's data has {name} {lv!r} > the global {gv!r}: the global statistics "
                    "were computed on other data (recompute them with group_statistics)"
                )
        return dataclasses.replace(
            data, total_weight=glob[0], pair_weight_c=glob[1], pair_weight_n=glob[2], _scratch=None
        )

    def _prepare(self, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> PreparedData:
        return self._globalise(prepare_ptr(y, w, ptr))

    def _prepare_call(self, lab: np.ndarray, group: Any, w: np.ndarray | None) -> PreparedData:
        # grad_hess and loss on one worker's rows (whole groups): its share under the global
        # normalisers (the shares of the loss add up to the whole)
        return self._globalise(super()._prepare_call(lab, group, w))  # type: ignore[misc]

    def grad_hess_prepared(
        self, margin: npt.ArrayLike, data: PreparedData, iteration: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        return super().grad_hess_prepared(margin, self._globalise(data), iteration)  # type: ignore[misc]


class GlobalPWiseRObjective(_GlobalNormalisers, PWiseRObjective):
    """``PWiseRObjective`` with global normalisers, for one worker's share of the data.

    Single-process training scales the pair terms by ``λ·W / Σ_G W_P,G·W_T,G``
    with sums over *all* groups. A worker sees only its own groups; given
    the global sums (see :func:`gbdt_pwiser.dask.group_statistics`) it
    produces, row for row, the gradient single-process training would. Use
    it as ``obj=`` in ``xgboost.dask.train`` or ``objective=`` in
    ``lightgbm.dask`` estimators (the parameters travel with the pickled
    object).

    Parameters
    ----------
    lam, margin_click_only, margin_no_click, pair_loss, pairs, random_state, device, n_jobs
        As :class:`gbdt_pwiser.PWiseRObjective`. With ``pairs=k`` each worker
        draws from its own rows, keyed by each row's position on the worker:
        reproducible for a given partitioning *and* assignment of partitions
        to workers (the scheduler may place partitions differently from one
        run to the next), and not the draws of a single-process fit.
    total_weight : float
        ``W = Σ w_i`` over the whole training data (the row count without weights).
    pair_weight_c, pair_weight_n : float
        ``Σ_G W_P,G·W_C,G`` and ``Σ_G W_P,G·W_N,G`` over all groups.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser import PWiseRObjective
    >>> from gbdt_pwiser.objectives.distributed import GlobalPWiseRObjective  # also gbdt_pwiser.dask
    >>> y = np.array([2, 1, 0, 2, 0, 0])
    >>> g = np.array([0, 0, 0, 1, 1, 1])
    >>> z = np.linspace(-1, 1, 6)
    >>> whole = PWiseRObjective(lam=1.0).grad_hess(z, y, group=g)[0]
    >>> obj = GlobalPWiseRObjective(lam=1.0, total_weight=6.0, pair_weight_c=1.0, pair_weight_n=3.0)
    >>> halves = [obj.grad_hess(z[s], y[s], group=g[s])[0] for s in (slice(0, 3), slice(3, 6))]
    >>> bool(np.allclose(np.concatenate(halves), whole, rtol=1e-12))
    True
    """

    _base_objective = PWiseRObjective
    _param_names = PWiseRObjective._param_names + _GlobalNormalisers._global_names

    def __init__(
        self,
        lam: float = DEFAULT_LAM,
        margin_click_only: float = DEFAULT_MARGIN_CLICK_ONLY,
        margin_no_click: float = DEFAULT_MARGIN_NO_CLICK,
        pair_loss: str = "squared_hinge",
        pairs: str | int = "all",
        random_state: int | None = 0,
        device: str = "cpu",
        n_jobs: int | None = None,
        *,
        total_weight: float,
        pair_weight_c: float,
        pair_weight_n: float,
    ) -> None:
        self.total_weight = total_weight
        self.pair_weight_c = pair_weight_c
        self.pair_weight_n = pair_weight_n
        super().__init__(
            lam=lam,
            margin_click_only=margin_click_only,
            margin_no_click=margin_no_click,
            pair_loss=pair_loss,
            pairs=pairs,
            random_state=random_state,
            device=device,
            n_jobs=n_jobs,
        )


class GlobalSharedCTCVRObjective(_GlobalNormalisers, SharedCTCVRObjective):
    """:class:`~gbdt_pwiser.objectives.SharedCTCVRObjective` with global normalisers, for one worker's rows.

    The shared two-output booster on ``xgboost.dask``: the PWiseR part of the
    CTR column is scaled by the global sums, as :class:`GlobalPWiseRObjective`
    does; the BCE and pCTCVR parts are per row and need nothing global.

    Parameters
    ----------
    lam, margin_click_only, margin_no_click, pair_loss, pairs, random_state, n_jobs, ctcvr_weight_ctr
        As :class:`~gbdt_pwiser.objectives.SharedCTCVRObjective`.
    total_weight, pair_weight_c, pair_weight_n : float
        As :class:`GlobalPWiseRObjective`.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.objectives import SharedCTCVRObjective
    >>> from gbdt_pwiser.objectives.distributed import GlobalSharedCTCVRObjective
    >>> y = np.array([2, 1, 0, 2, 0, 0])
    >>> g = np.array([0, 0, 0, 1, 1, 1])
    >>> m = np.linspace(-1, 1, 12).reshape(6, 2)
    >>> whole = SharedCTCVRObjective(lam=1.0).grad_hess(m, y, group=g)[0]
    >>> obj = GlobalSharedCTCVRObjective(lam=1.0, total_weight=6.0, pair_weight_c=1.0, pair_weight_n=3.0)
    >>> halves = [obj.grad_hess(m[s], y[s], group=g[s])[0] for s in (slice(0, 3), slice(3, 6))]
    >>> bool(np.allclose(np.concatenate(halves), whole, rtol=1e-12))
    True
    """

    _base_objective = SharedCTCVRObjective
    _param_names = SharedCTCVRObjective._param_names + _GlobalNormalisers._global_names

    def __init__(
        self,
        lam: float = DEFAULT_LAM,
        margin_click_only: float = DEFAULT_MARGIN_CLICK_ONLY,
        margin_no_click: float = DEFAULT_MARGIN_NO_CLICK,
        pair_loss: str = "squared_hinge",
        pairs: str | int = "all",
        random_state: int | None = 0,
        n_jobs: int | None = None,
        ctcvr_weight_ctr: float = 1.0,
        *,
        total_weight: float,
        pair_weight_c: float,
        pair_weight_n: float,
    ) -> None:
        self.total_weight = total_weight
        self.pair_weight_c = pair_weight_c
        self.pair_weight_n = pair_weight_n
        super().__init__(
            lam=lam,
            margin_click_only=margin_click_only,
            margin_no_click=margin_no_click,
            pair_loss=pair_loss,
            pairs=pairs,
            random_state=random_state,
            n_jobs=n_jobs,
            ctcvr_weight_ctr=ctcvr_weight_ctr,
        )


# --------------------------------------------------------------------------- entire space


def entire_space_label(y: npt.ArrayLike, ctr_prob: npt.ArrayLike) -> np.ndarray:
    """Labels that carry pCTR for the entire-space CVR booster: ``-pCTR`` on conversions, ``+pCTR`` else.

    The entire-space loss needs only the conversion bit and pCTR of each row,
    so one float label holds both and pCTR travels with its row through any
    partitioning. float32, as XGBoost and LightGBM store labels (XGBoost's
    own predictions are float32).

    Examples
    --------
    >>> from gbdt_pwiser.objectives.distributed import entire_space_label
    >>> entire_space_label([0, 1, 2], [0.25, 0.5, 0.5]).tolist()
    [0.25, 0.5, -0.5]
    """
    lab = check_labels(y)
    a = check_ctr_prob(ctr_prob, lab.size)
    return np.where(lab == 2, -a, a).astype(np.float32)


def _decode_label(enc: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    e = check_margin(enc, name)
    mag = np.abs(e.astype(np.float64))
    if np.any(mag == 0.0) or np.any(mag > 1.0):
        raise ValueError(
            f"{name} must hold entire-space labels ±pCTR with 0 < pCTR <= 1 (see entire_space_label); "
            "funnel labels {0, 1, 2} are not entire-space labels"
        )
    lab = np.where(e < 0, 2, 0).astype(np.int8)
    return lab, check_ctr_prob(mag, e.size, name)


class _LabelESMMData(_ESMMData):
    def __init__(self, y: np.ndarray, w: np.ndarray | None, a: np.ndarray) -> None:
        super().__init__(y, w)
        self.a = a


class EntireSpaceLabelObjective(EntireSpaceCVRObjective):
    """Entire-space CVR objective reading pCTR from the labels of :func:`entire_space_label`.

    For distributed training: each worker's labels carry the pCTR of its own
    rows, so no per-row state lives in the (pickled) objective.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser import EntireSpaceCVRObjective
    >>> from gbdt_pwiser.objectives.distributed import EntireSpaceLabelObjective, entire_space_label
    >>> y, a, u = np.array([0, 1, 2]), np.array([0.25, 0.5, 0.75]), np.zeros(3)
    >>> g1, _ = EntireSpaceLabelObjective()(entire_space_label(y, a), u)
    >>> g0, _ = EntireSpaceCVRObjective().grad_hess(u, y, ctr_prob=a)
    >>> bool(np.allclose(g1, g0))
    True
    """

    _param_names: tuple[str, ...] = ("device", "n_jobs")

    def __init__(self, device: str = "cpu", n_jobs: int | None = None) -> None:
        super().__init__(ctr_prob=None, device=device, n_jobs=n_jobs)

    def _compute(self, z: Any, data: _ESMMData, iteration: int, reuse: bool) -> tuple[Any, Any]:
        if not isinstance(data, _LabelESMMData):
            raise TypeError("EntireSpaceLabelObjective computes on the labels of entire_space_label only")
        return self._run(z, data, data.a, reuse)

    # the adapters' conventions are _CustomObjective.__call__'s; only the labels are read differently
    def _from_dmatrix(self, d: Any) -> _LabelESMMData:
        lab, p = _decode_label(d.get_label(), "DMatrix label")
        w = d.get_weight()
        w = None if w.size == 0 else check_weight(w, lab.size, "DMatrix weight")
        return _LabelESMMData(lab, w, p)

    def _from_dataset(self, ds: Any) -> _LabelESMMData:
        lab, p = _decode_label(ds.get_label(), "Dataset label")
        w = ds.get_weight()
        w = None if w is None or np.asarray(w).size == 0 else check_weight(w, lab.size, "Dataset weight")
        return _LabelESMMData(lab, w, p)

    def _from_arrays(self, y_true: Any, sample_weight: Any, group: Any) -> _LabelESMMData:
        lab, p = _decode_label(y_true, "y_true")
        return _LabelESMMData(lab, check_weight(sample_weight, lab.size, "sample_weight"), p)
