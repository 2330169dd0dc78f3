"""Calling conventions shared by the objectives: ``xgb.train``, ``lgb.train`` and the
scikit-learn wrappers, plus the round counting that drives the sampled mode."""

from __future__ import annotations

import weakref
import zlib
from typing import Any

import numpy as np

from .._threads import numba_threads as _numba_threads
from .._validation import check_labels, check_margin, check_weight
from ._prepare import ptr_from_sizes

class _CustomObjective:
    """Adapter machinery shared by the objectives: XGBoost, LightGBM and sklearn calls.

    Subclasses define ``_param_names``, ``_check_params``, ``_prepare(y, w, ptr)``
    (once per training data) and ``_compute(z, prepared, iteration, reuse)``.
    """

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

    def _compute(self, z: np.ndarray, data: Any, iteration: int, reuse: bool):  # pragma: no cover
        raise NotImplementedError

    def _threads(self, in_booster: bool) -> int | None:
        # Inside a boosting loop the booster owns the cores: its OpenMP threads spin
        # between rounds, and a second pool competing with them slowed XGBoost fits by
        # 10-30 % in benchmarks/, while the fused kernel needs ~2 ms per 1M rows on one
        # thread. So the adapters default to one thread; an explicit n_jobs is honoured.
        if self.n_jobs is None and in_booster:
            return 1
        return self.n_jobs

    def _buffers(self, n: int, reuse: bool) -> tuple[np.ndarray, np.ndarray]:
        if not reuse:
            return np.empty(n), np.empty(n)
        if self._out is None or self._out[0].size != n:
            self._out = (np.empty(n), np.empty(n))
        return self._out

    def _reset_adapter_state(self) -> None:
        self._data_ref: Any = None
        self._data_key: Any = None
        self._prepared: Any = None
        self._first_margin: np.ndarray | None = None
        self._out: tuple[np.ndarray, np.ndarray] | None = None
        self.iteration_ = 0

    def reset(self) -> None:
        """Forget the cached training data and restart the round counter."""
        self._reset_adapter_state()

    @staticmethod
    def _fingerprint(z: np.ndarray) -> np.ndarray:
        # up to 4096 evenly spaced margins: a boosting round changes (almost) all of them
        step = max(1, z.shape[0] // 4096)
        return np.array(z[::step], dtype=np.float64)

    def _next_round(self, z: Any, same_data: bool) -> int:
        # A new training run on the same data starts again from the same margins.
        zh = np.asarray(z) if not hasattr(z, "__cuda_array_interface__") else None
        if zh is None:  # device margins: count rounds per data object only
            if not same_data:
                self.iteration_ = 0
        else:
            fp = self._fingerprint(zh)
            if not same_data or self._first_margin is None or np.array_equal(self._first_margin, fp):
                self._first_margin = fp
                self.iteration_ = 0
        it = self.iteration_
        self.iteration_ += 1
        return it

    def _adapt(self, z: Any, key: Any, obj_ref: Any, make: Any):
        if not hasattr(z, "__cuda_array_interface__"):
            z = check_margin(np.asarray(z).reshape(-1) if np.ndim(z) == 2 and np.shape(z)[1] == 1 else z,
                             "predictions")
        same = self._prepared is not None and self._data_key == key and (
            obj_ref is None or (self._data_ref is not None and self._data_ref() is obj_ref)
        )
        if not same:
            with _numba_threads(self._threads(True), n_rows=None):  # leave the booster its cores
                self._prepared = make()
            self._data_key = key
            self._data_ref = weakref.ref(obj_ref) if obj_ref is not None else None
            self._out = None
        n = z.shape[0]
        if self._prepared.n != n:
            raise ValueError(f"predictions have {n} rows but the training data has {self._prepared.n}")
        it = self._next_round(z, same)
        return self._compute(z, self._prepared, it, reuse=True)

    def __call__(self, a: Any, b: Any, sample_weight: Any = None, group: Any = None):
        """Objective callable for ``xgb.train``, ``lgb.train`` and the sklearn wrappers.

        * ``obj(predt, dtrain)`` — XGBoost ``DMatrix`` (``xgb.train(obj=obj)``).
        * ``obj(preds, train_set)`` — LightGBM ``Dataset`` (``params["objective"] = obj``).
        * ``obj(y_true, y_pred[, sample_weight[, group]])`` — scikit-learn wrappers;
          ``group`` holds LightGBM-style group sizes.
        """
        mod = type(b).__module__ or ""
        if mod.startswith("xgboost") and type(b).__name__.endswith("DMatrix"):
            return self._adapt(a, ("xgb", id(b)), b, lambda: self._prepare(*_read_dmatrix(b)))
        if mod.startswith("lightgbm") and type(b).__name__ == "Dataset":
            return self._adapt(a, ("lgb", id(b)), b, lambda: self._prepare(*_read_lgb(b)))
        y_true = check_labels(a)
        w = check_weight(sample_weight, y_true.size, "sample_weight")
        if w is not None and w.size == 0:
            w = None
        key = ("skl", y_true.size, zlib.crc32(y_true.tobytes()),
               None if w is None else zlib.crc32(w.tobytes()),
               None if group is None else zlib.crc32(np.asarray(group, dtype=np.int64).tobytes()))

        def make() -> Any:
            n = y_true.size
            ptr = (np.array([0, n], dtype=np.int64) if group is None
                   else ptr_from_sizes(group, n, "group"))
            return self._prepare(y_true, w, ptr)

        return self._adapt(b, key, None, make)


def _read_dmatrix(dtrain: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Labels, per-row weights and group boundaries of an XGBoost DMatrix."""
    y = dtrain.get_label()
    n = y.size
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
    return check_labels(y, n, "DMatrix label"), check_weight(w, n, "DMatrix weight"), ptr


#: DMatrix field that may carry group-start flags (1 on each group's first row, else 0): XGBoost
#: keeps only per-group weights beside ``qid`` in its quantile sketch and Dask interface, so
#: per-row weights travel with ``weight`` and the groups with these flags instead
GROUP_START_FIELD = "label_lower_bound"


def _group_start_ptr(dtrain: Any, n: int) -> np.ndarray:
    flags = dtrain.get_float_info(GROUP_START_FIELD)
    if flags.size == 0:
        return np.array([0, n], dtype=np.int64)
    if flags.size != n or (n and flags[0] != 1.0) or np.any((flags != 0.0) & (flags != 1.0)):
        raise ValueError(f"DMatrix {GROUP_START_FIELD} must hold group-start flags (1 on the first row "
                         f"of each group, else 0) for all {n} rows when it is set with a custom objective")
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
