"""Calling conventions shared by the objectives: ``xgb.train``, ``lgb.train`` and the
scikit-learn wrappers, plus the round counting that drives the sampled mode.

Round counting. XGBoost >= 3.2 passes the boosting round to objects that are
instances of ``xgboost.objective.Objective`` (``obj(iteration, predt, dtrain)``);
the objectives register themselves as such (a virtual subclass, so importing
gbdt_pwiser does not import XGBoost) and then use the true round. Older XGBoost,
LightGBM and the scikit-learn wrappers give no round: there the adapters count
calls and restart at 0 when the margins equal the first round's again (a new
training run on the same data starts from the same margins).
"""

from __future__ import annotations

import numbers
import sys
import weakref
from typing import Any

import numpy as np

from .._threads import booster_team, parts_on, resolve_threads
from .._validation import check_labels, check_margin, check_weight
from ._prepare import ptr_from_sizes

_REGISTERED: list[type] = []


def _register_xgboost_objective() -> None:
    """Make every objective class an ``xgboost.objective.Objective`` (XGBoost >= 3.2).

    Done only once XGBoost is imported (here at import time when it already is, or
    at the first adapter call), so that ``import gbdt_pwiser`` stays light.
    """
    if _REGISTERED or "xgboost" not in sys.modules:
        return
    try:
        from xgboost.objective import Objective
    except ImportError:  # XGBoost < 3.2: rounds are counted from the margins
        _REGISTERED.append(object)
        return
    Objective.register(_CustomObjective)
    _REGISTERED.append(Objective)


def _is_dmatrix(b: Any) -> bool:
    mod = type(b).__module__ or ""
    return mod.startswith("xgboost") and type(b).__name__.endswith("DMatrix")


_SNAPSHOT = 4096  # rows compared when the scikit-learn wrapper passes the same arrays again


def _snapshot(a: np.ndarray) -> np.ndarray:
    step = max(1, a.shape[0] // _SNAPSHOT)
    return np.array(a[::step], copy=True)


class _CustomObjective:
    """Adapter machinery shared by the objectives: XGBoost, LightGBM and sklearn calls.

    Extension points (what a subclass defines or overrides):

    * ``_param_names``, ``_check_params()`` — the parameters;
    * ``_prepare(y, w, ptr)`` — once per training data: validated int8 labels,
      float64 weights (or None) and int64 group boundaries → prepared data;
    * ``_check_prepared(data)`` — once per training data, after ``_prepare``
      (warnings about degenerate data); a no-op here;
    * ``_compute(z, data, iteration, reuse)`` — every round: gradient and Hessian (``reuse``: a
      booster's call, whose outputs come from :meth:`_buffers`).
    """

    #: the parameter every objective has (see ``gbdt_pwiser._threads.resolve_threads``)
    n_jobs: int | None
    #: the gradient and Hessian buffers reused across rounds (``_buffers``)
    _out: tuple[np.ndarray, np.ndarray] | None

    _param_names: tuple[str, ...] = ()

    def _get_params(self) -> dict[str, Any]:
        """Parameters as a dict (scikit-learn style)."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"{type(self).__name__}({args})"

    def __getstate__(self) -> dict[str, Any]:
        return self._get_params()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _check_params(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _compute(self, z: np.ndarray, data: Any, iteration: int, reuse: bool) -> tuple[Any, Any]:  # pragma: no cover
        raise NotImplementedError

    def _threads(self, in_booster: bool, n_rows: int | None) -> int:
        """Threads of one pass: ``n_jobs``; else, inside training (``in_booster``), the booster's
        threads as the adapter read them from the training data (:func:`booster_threads`); else
        every core (the boosters' default). One thread for small inputs."""
        return resolve_threads(self.n_jobs, n_rows, self._booster_threads if in_booster else None)

    #: The dtype of the gradients and Hessians the adapters hand a booster (``reuse``). XGBoost and
    #: LightGBM keep both as float32, each a float64 value rounded to nearest: given float64 arrays
    #: they converted them every round (LightGBM in one NumPy thread: 0.9 ms a round at 300k rows,
    #: 3 % of the fit). The kernels add in float64 and round once, so a booster gets the same bits
    #: as from float64 outputs. ``grad_hess`` and friends return float64.
    _out_dtype: type = np.float32

    def _buffers(self, n: int, reuse: bool, shape: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Output buffers of ``n`` rows (times ``shape``): float64 for a direct call; for a booster's
        (``reuse``), ``_out_dtype``, one pair kept across rounds."""
        if not reuse:
            return np.empty((n, *shape)), np.empty((n, *shape))
        dims = (n, *shape)
        if self._out is None or self._out[0].shape != dims or self._out[0].dtype != self._out_dtype:
            self._out = (np.empty(dims, self._out_dtype), np.empty(dims, self._out_dtype))
        return self._out

    def _check_prepared(self, data: Any) -> None:
        """Hook run once per training data after :meth:`_prepare` (warnings)."""

    def _reset_adapter_state(self) -> None:
        self._data_ref: Any = None
        self._data_key: Any = None
        self._skl_ref: Any = None
        self._prepared: Any = None
        self._first_margin: np.ndarray | None = None
        self._out = None
        self._booster_threads: int | None = None
        self.iteration_ = 0

    def reset(self) -> None:
        """Forget the cached training data and restart the round counter."""
        self._reset_adapter_state()

    #: margins in a fingerprint (evenly spaced), and every how many of them a first look compares
    _FINGERPRINT, _PROBE = 4096, 256

    @classmethod
    def _fingerprint(cls, z: np.ndarray) -> np.ndarray:
        # up to 4096 evenly spaced margins: a boosting round changes (almost) all of them
        return np.array(z[:: max(1, z.shape[0] // cls._FINGERPRINT)], dtype=np.float64)

    def _first_round_again(self, z: np.ndarray) -> bool:
        """Whether ``z`` are the first round's margins again (a new run). 16 of the fingerprint's
        margins first: a later round differs there, and the check reads 16 cache lines of the cold
        margins, not 4096 (0.07 ms a round at 300k rows, inside a LightGBM fit)."""
        first = self._first_margin
        assert first is not None
        step = max(1, z.shape[0] // self._FINGERPRINT)
        if not np.array_equal(z[:: step * self._PROBE], first[:: self._PROBE]):
            return False
        return np.array_equal(self._fingerprint(z), first)

    def _next_round(self, z: Any, same_data: bool) -> int:
        # A new training run on the same data starts again from the same margins.
        zh = np.asarray(z) if not hasattr(z, "__cuda_array_interface__") else None
        if zh is None:  # device margins: count rounds per data object only
            if not same_data:
                self.iteration_ = 0
        elif not same_data or self._first_margin is None or self._first_round_again(zh):
            self._first_margin = self._fingerprint(zh)
            self.iteration_ = 0
        it = self.iteration_
        self.iteration_ += 1
        return it + self.round_offset

    #: Added to the rounds the adapters count (not to a round the booster passes): the rounds of a
    #: booster that this training run continues, so that sampled pairs keep being redrawn.
    round_offset = 0

    def _adapt(
        self,
        z: Any,
        same: bool,
        make: Any,
        iteration: int | None = None,
        booster: str | None = None,
        threads: int | None = None,
    ) -> tuple[Any, Any]:
        """One round: prepare the data unless ``same``, check the margins, compute; the kernels'
        parts on the OpenMP team of ``booster`` (``"xgboost"``, ``"lightgbm"``: the library whose
        update calls this round; see :mod:`gbdt_pwiser._threads`), else on the pool. ``threads``:
        the booster's, as its training data tells them (:func:`booster_threads`), which the
        objective takes unless its ``n_jobs`` says otherwise; None (the scikit-learn wrappers pass
        no training data): every core, their boosters' default."""
        self._booster_threads = threads
        if not same:
            self._prepared = None  # a failed preparation must not leave the old data cached
            self._prepared = make()
            self._out = None
            self._check_prepared(self._prepared)
        # after the data, so a 2-column label is reported as such, not as 2-D predictions
        z = self._check_predictions(z)
        n = z.shape[0]
        if self._prepared.n != n:
            raise ValueError(f"predictions have {n} rows but the training data has {self._prepared.n}")
        if iteration is None:
            it = self._next_round(z, same)
        else:  # the booster's own round (XGBoost >= 3.2)
            if iteration < 0:
                raise ValueError(f"iteration must be >= 0, got {iteration}")
            it = int(iteration)
            self._first_margin = None
            self.iteration_ = it + 1
        with parts_on(booster_team(booster), self._booster_threads):
            return self._compute(z, self._prepared, it, reuse=True)

    def _check_predictions(self, z: Any) -> Any:
        """The booster's margins for one round, checked (1-D; device arrays pass as they are).

        An extension point: an objective with several outputs per row overrides it.
        """
        if hasattr(z, "__cuda_array_interface__"):
            return z
        z = np.asarray(z).reshape(-1) if np.ndim(z) == 2 and np.shape(z)[1] == 1 else z
        return check_margin(z, "predictions", finite=not self._kernels_check_finite)

    #: True where :meth:`_compute` raises for NaN or infinite margins itself (its CPU kernels count
    #: them as they read them; its CUDA path checks host margins): the adapters then check only the
    #: shape and dtype of a round's margins, not every value a second time.
    _kernels_check_finite = False

    def _same_booster_data(self, key: Any, obj: Any) -> bool:
        same = (
            self._prepared is not None
            and self._data_key == key
            and self._data_ref is not None
            and self._data_ref() is obj
        )
        if not same:
            self._data_key, self._data_ref, self._skl_ref = key, weakref.ref(obj), None
        return same

    def _same_sklearn_data(self, arrays: tuple) -> bool:
        """Whether the wrapper passes the training data of the cached preparation again.

        No hashing: LightGBM's wrappers pass the very same arrays every round (then
        a strided sample of 4096 labels guards against in-place edits); XGBoost's
        pass fresh copies (then one vectorised comparison with the kept copy).
        """
        ref = self._skl_ref
        if ref is None or self._prepared is None or self._data_key is not None:
            return False
        for new, (obj, copy, snap) in zip(arrays, ref, strict=True):
            if new is None or obj is None:
                if new is not obj:
                    return False
                continue
            if new is obj:
                if not np.array_equal(_snapshot(np.asarray(new)), snap):
                    return False
            elif not (np.shape(new) == copy.shape and np.array_equal(np.asarray(new), copy)):
                return False
        return True

    def __call__(self, a: Any, b: Any, sample_weight: Any = None, group: Any = None) -> tuple[Any, Any]:
        """Objective callable for ``xgb.train``, ``lgb.train`` and the sklearn wrappers.

        * ``obj(iteration, predt, dtrain)`` — XGBoost >= 3.2 (``xgb.train(obj=obj)``),
          which passes the boosting round.
        * ``obj(predt, dtrain)`` — XGBoost ``DMatrix`` (older XGBoost).
        * ``obj(preds, train_set)`` — LightGBM ``Dataset`` (``params["objective"] = obj``).
        * ``obj(y_true, y_pred[, sample_weight[, group]])`` — scikit-learn wrappers;
          ``group`` holds LightGBM-style group sizes.

        The labels must be one funnel-label column (``funnel_label(click,
        conversion)``); a 2-column label is a ``ValueError``. LightGBM turns NaN
        labels into 0 when it constructs a ``Dataset`` and keeps no trace of them,
        so check labels before building one (an unconstructed ``Dataset`` with NaN
        labels is rejected here).
        """
        _register_xgboost_objective()
        if _is_dmatrix(sample_weight) and isinstance(a, numbers.Integral) and group is None:
            d = sample_weight
            return self._adapt(
                b,
                self._same_booster_data(("xgb", id(d)), d),
                lambda: self._from_dmatrix(d),
                iteration=int(a),
                booster="xgboost",
                threads=booster_threads(d),
            )
        if _is_dmatrix(b):
            return self._adapt(
                a,
                self._same_booster_data(("xgb", id(b)), b),
                lambda: self._from_dmatrix(b),
                booster="xgboost",
                threads=booster_threads(b),
            )
        mod = type(b).__module__ or ""
        if mod.startswith("lightgbm") and type(b).__name__ == "Dataset":
            return self._adapt(
                a,
                self._same_booster_data(("lgb", id(b)), b),
                lambda: self._from_dataset(b),
                booster="lightgbm",
                threads=booster_threads(b),
            )
        # the scikit-learn wrappers pass no training data: every core
        if sample_weight is not None and np.size(sample_weight) == 0:
            sample_weight = None
        arrays = (a, sample_weight, group)
        same = self._same_sklearn_data(arrays)

        def make() -> Any:
            prepared = self._from_arrays(a, sample_weight, group)
            self._data_key = self._data_ref = None
            self._skl_ref = tuple(
                (None, None, None) if x is None else (x, np.array(x, copy=True), _snapshot(np.asarray(x)))
                for x in arrays
            )
            return prepared

        return self._adapt(b, same, make)

    # The prepared data of each convention's training data: extension points for an objective whose
    # labels are not funnel labels (``EntireSpaceLabelObjective``); the conventions themselves, the
    # booster's threads and the caching stay in :meth:`__call__`.
    def _from_dmatrix(self, d: Any) -> Any:
        """Prepared data of an XGBoost ``DMatrix`` (labels, weights, ``qid`` groups)."""
        return self._prepare(*_read_dmatrix(d))

    def _from_dataset(self, ds: Any) -> Any:
        """Prepared data of a LightGBM ``Dataset`` (labels, weights, group sizes)."""
        return self._prepare(*_read_lgb(ds))

    def _from_arrays(self, y_true: Any, sample_weight: Any, group: Any) -> Any:
        """Prepared data of a scikit-learn wrapper's arrays (``group``: LightGBM-style group sizes)."""
        y = check_labels(y_true, name="y_true")
        n = y.size
        w = check_weight(sample_weight, n, "sample_weight")
        ptr = np.array([0, n], dtype=np.int64) if group is None else ptr_from_sizes(group, n, "group")
        return self._prepare(y, w, ptr)


#: LightGBM's names of ``num_threads`` (its parameter aliases)
_LGB_THREADS = ("num_threads", "num_thread", "nthread", "nthreads", "n_jobs")


def booster_threads(data: Any) -> int | None:
    """The threads the booster trains on, as its training data tells them; None when unknown
    (then the objective takes every core, which is also the boosters' default).

    * XGBoost ``DMatrix``: its ``nthread`` (the scikit-learn wrappers and ``xgboost.dask`` build it
      with the booster's ``n_jobs``/``nthread``), else XGBoost's global ``nthread``
      (``xgb.config_context``). ``xgb.train(params)`` does not show ``params["nthread"]`` to a custom
      objective: build the ``DMatrix`` with the same ``nthread``, or set the objective's ``n_jobs``.
    * LightGBM ``Dataset``: ``num_threads`` (or an alias) of the training parameters, which
      ``lgb.train`` (and ``lightgbm.dask``, per worker) puts in the ``Dataset``'s parameters.

    Zero or negative values mean "OpenMP's default" to both boosters: None here.
    """
    value: Any
    if _is_dmatrix(data):
        value = getattr(data, "nthread", None)
        if not (isinstance(value, numbers.Integral) and int(value) > 0):
            try:
                value = sys.modules["xgboost"].get_config().get("nthread")
            except (KeyError, AttributeError):  # pragma: no cover - an XGBoost without get_config
                value = None
    else:
        params = getattr(data, "params", None) or {}
        value = next((params[k] for k in _LGB_THREADS if params.get(k) is not None), None)
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _read_dmatrix(dtrain: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Labels, per-row weights and group boundaries of an XGBoost DMatrix."""
    n = dtrain.num_row()
    y = check_labels(dtrain.get_label(), n, "DMatrix label")  # first: a 2-column label is named as such
    w = dtrain.get_weight()
    ptr = dtrain.get_uint_info("group_ptr")
    ptr = np.asarray(ptr, dtype=np.int64) if ptr.size > 1 else _group_start_ptr(dtrain, n)
    if ptr[-1] != n:
        raise ValueError(f"DMatrix group_ptr ends at {int(ptr[-1])} but there are {n} rows")
    if w.size == 0:
        w = None
    elif w.size != n:
        if w.size == ptr.size - 1:  # XGBoost stores per-group weights when qid is set
            w = np.repeat(np.asarray(w, dtype=np.float64), np.diff(ptr))
        else:
            raise ValueError(f"DMatrix has {w.size} weights for {n} rows")
    return y, check_weight(w, n, "DMatrix weight"), ptr


#: DMatrix field that may carry group-start flags (1 on each group's first row, else 0): XGBoost
#: keeps only per-group weights beside ``qid`` in its quantile sketch and Dask interface, so
#: per-row weights travel with ``weight`` and the groups with these flags instead
GROUP_START_FIELD = "label_lower_bound"


def _group_start_ptr(dtrain: Any, n: int) -> np.ndarray:
    flags = dtrain.get_float_info(GROUP_START_FIELD)
    if flags.size == 0:
        return np.array([0, n], dtype=np.int64)
    if flags.size != n or (n and flags[0] != 1.0) or np.any((flags != 0.0) & (flags != 1.0)):
        raise ValueError(
            f"DMatrix {GROUP_START_FIELD} must hold group-start flags (1 on the first row "
            f"of each group, else 0) for all {n} rows when it is set with a custom objective"
        )
    return np.append(np.flatnonzero(flags == 1.0), n).astype(np.int64)


def _read_lgb(ds: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Labels, per-row weights and group boundaries of a LightGBM Dataset."""
    y = ds.get_label()
    n = np.asarray(y).size
    lab = check_labels(y, n, "Dataset label")
    w = ds.get_weight()
    w = None if w is None or np.asarray(w).size == 0 else check_weight(w, n, "Dataset weight")
    grp = ds.get_group()
    ptr = np.array([0, n], dtype=np.int64) if grp is None else ptr_from_sizes(grp, n, "Dataset group")
    return lab, w, ptr


_register_xgboost_objective()  # when XGBoost is already imported
