"""``PWiseRObjective``: BCE + λ·PWiseR as a custom objective (SPEC §2–§4, §7).

This module validates, prepares and dispatches; the mathematics is in
:mod:`gbdt_pwiser._kernels` (CPU) and :mod:`gbdt_pwiser.gpu` (CUDA).
"""

from __future__ import annotations

import weakref
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _kernels as K
from ._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK, HESSIAN_FLOOR
from ._prepare import PreparedData, prepare_codes, prepare_ptr, ptr_from_sizes
from ._threads import numba_threads as _numba_threads
from ._validation import (
    check_device,
    check_labels,
    check_lam_margins,
    check_margin,
    check_pair_loss,
    check_pairs,
    check_random_state,
    check_weight,
    group_layout,
)

__all__ = ["PWiseRObjective", "initial_margin", "prepare_data"]


def initial_margin(y: npt.ArrayLike, weight: npt.ArrayLike | None = None) -> float:
    """Log-odds of the (weighted) click rate: the margin to start boosting from.

    A custom objective gets no fitted intercept in XGBoost or LightGBM. Start
    from this value — ``params["base_score"]`` in ``xgb.train`` (a custom
    objective runs with an identity link, so ``base_score`` is a margin), or
    ``lgb.Dataset(init_score=np.full(n, value))`` in LightGBM (then add it
    to ``Booster.predict(X, raw_score=True)`` yourself).

    Parameters
    ----------
    y : array-like of shape (n,)
        Funnel labels in {0, 1, 2}; clicks are ``y >= 1``.
    weight : array-like of shape (n,), optional
        Per-row weights.

    Returns
    -------
    float
        ``log(r / (1 - r))`` with ``r`` the click rate, clipped to ``[1e-6, 1 - 1e-6]``.

    Examples
    --------
    >>> from gbdt_pwiser import initial_margin
    >>> round(initial_margin([0, 0, 0, 1]), 4)
    -1.0986
    """
    lab = check_labels(y)
    w = check_weight(weight, lab.size)
    if lab.size == 0:
        raise ValueError("y is empty")
    click = (lab >= 1).astype(np.float64)
    if w is None:
        rate = click.mean()
    else:
        tot = w.sum()
        if tot <= 0:
            raise ValueError("weights sum to zero")
        rate = float(np.dot(click, w) / tot)
    rate = min(max(rate, 1e-6), 1.0 - 1e-6)
    return float(np.log(rate / (1.0 - rate)))


def prepare_data(
    y: npt.ArrayLike,
    group: npt.ArrayLike | None = None,
    weight: npt.ArrayLike | None = None,
    *,
    group_ptr: npt.ArrayLike | None = None,
) -> PreparedData:
    """Validate labels, weights and groups once and lay them out for the kernels.

    ``group`` holds per-row ids of any type and order; ``group_ptr`` holds
    boundaries of contiguous groups (XGBoost's ``group_ptr``) instead.
    """
    lab = check_labels(y)
    n = lab.size
    w = check_weight(weight, n)
    if group_ptr is not None:
        if group is not None:
            raise ValueError("give either group or group_ptr, not both")
        ptr = np.ascontiguousarray(group_ptr, dtype=np.int64)
        if ptr.ndim != 1 or ptr.size < 1 or ptr[0] != 0 or ptr[-1] != n or np.any(np.diff(ptr) < 0):
            raise ValueError(f"group_ptr must rise from 0 to n={n}")
        return prepare_ptr(lab, w, ptr)
    if group is None:
        return prepare_ptr(lab, w, np.array([0, n], dtype=np.int64))
    ptr, codes, n_groups = group_layout(group, n)
    if ptr is not None:
        return prepare_ptr(lab, w, ptr)
    if n and np.all(codes[1:] >= codes[:-1]):  # e.g. string ids that come grouped
        ptr = np.searchsorted(codes, np.arange(n_groups + 1), side="left").astype(np.int64)
        return prepare_ptr(lab, w, ptr)
    return prepare_codes(lab, w, codes, n_groups)


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


class PWiseRObjective(_CustomObjective):
    """BCE + λ·PWiseR custom objective for XGBoost and LightGBM.

    The CTR booster's objective from "Pairwise Ranking Loss for Multi-Task
    Learning in Recommender Systems" (arXiv 2406.02163): binary cross-entropy
    on clicks plus λ times a pairwise ranking loss that pushes each conversion
    above the click-only and the non-clicked exposures of its own group
    (request, session, user…). Labels are funnel labels ``y = click +
    conversion`` in {0, 1, 2}.

    The sum form ``L = Σ w_i BCE_i + λ·W·PWiseR`` (``W = Σ w_i``) is
    minimised, so ``L / W`` equals the paper's mean-loss form.

    Parameters
    ----------
    lam : float, default=1.0
        Weight λ ≥ 0 of the pairwise term; 0 gives plain BCE.
    margin_click_only : float, default=0.02
        Margin m1 of conversion-vs-click-only pairs (probability units for
        ``squared_hinge``, logits for ``logistic``).
    margin_no_click : float, default=0.02
        Margin m2 of conversion-vs-non-click pairs.
    pair_loss : {"squared_hinge", "logistic"}, default="squared_hinge"
        ``max(0, p_j - p_i + m)²`` (the paper's) or ``log(1 + exp(z_j - z_i + m))``.
    pairs : "all" or int, default="all"
        ``"all"``: exact over all within-group pairs (O(n log n) for the
        squared hinge, O(|P|·|partners|) per group for logistic). An int
        ``k``: ``k`` partners drawn per conversion and term each round,
        weighted ``|partners| / k`` (unbiased).
    random_state : int, default=0
        Seed of the sampled mode; round ``t`` uses a key derived from
        ``(random_state, t)``, so fits are reproducible bit for bit whatever
        the thread count.
    device : {"cpu", "cuda"}, default="cpu"
        Where gradients are computed. ``"cuda"`` returns device arrays
        (``__cuda_array_interface__``) for XGBoost GPU training.
    n_jobs : int, optional
        Threads for the CPU kernels (``-1`` all). ``None``: Numba's default for
        :meth:`grad_hess`, and **one** thread when called by XGBoost/LightGBM
        during training, where the booster's own threads own the cores (a second
        busy thread pool slows the tree building more than it speeds up the
        objective; see ``benchmarks/README.md``). Inputs under 65,536 rows always
        use one thread.

    Attributes
    ----------
    iteration_ : int
        Number of rounds seen by the XGBoost/LightGBM adapters since the last
        training run started.

    Notes
    -----
    * ``xgb.train(params, dtrain, obj=obj)``: labels, weights and ``qid``
      groups come from the ``DMatrix`` (per-group weights are broadcast to
      rows). Set ``params["base_score"] = initial_margin(y)`` (a custom
      objective has no intercept) and ``disable_default_eval_metric=1``
      (the default metric would score funnel labels as a regression); use
      :func:`gbdt_pwiser.metrics.xgb_metric` for AUC/GAUC.
    * ``lgb.train({"objective": obj, ...}, lgb.Dataset(X, y, group=sizes))``:
      labels, weights and group sizes come from the ``Dataset``; start from
      ``init_score`` (see :func:`initial_margin`) and set ``"metric": "None"``.
    * scikit-learn wrappers (``XGBRegressor(objective=obj)``,
      ``LGBMRegressor``/``LGBMRanker(objective=obj)``) call
      ``obj(y_true, y_pred[, sample_weight[, group_sizes]])``; without group
      sizes all rows form one group.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser import PWiseRObjective
    >>> obj = PWiseRObjective(lam=1.0)
    >>> y = np.array([2, 1, 0, 0, 2, 0])
    >>> group = np.array(["a", "a", "a", "b", "b", "b"])
    >>> grad, hess = obj.grad_hess(np.zeros(6), y, group=group)
    >>> grad.shape, bool(np.all(hess > 0))
    ((6,), True)
    """

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
    ) -> None:
        self.lam = lam
        self.margin_click_only = margin_click_only
        self.margin_no_click = margin_no_click
        self.pair_loss = pair_loss
        self.pairs = pairs
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self._check_params()
        self._reset_adapter_state()

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> tuple[float, float, float, int, int, int]:
        lam, m1, m2 = check_lam_margins(self.lam, self.margin_click_only, self.margin_no_click)
        loss_kind = check_pair_loss(self.pair_loss)
        k = check_pairs(self.pairs)
        check_device(self.device)
        seed = check_random_state(self.random_state)
        if self.n_jobs is not None and (isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, (int, np.integer)) or self.n_jobs == 0):
            raise ValueError(f"n_jobs must be None, -1 or a positive int, got {self.n_jobs!r}")
        return lam, m1, m2, loss_kind, k, seed

    # ------------------------------------------------------------------ core
    def grad_hess(
        self,
        margin: npt.ArrayLike,
        y: npt.ArrayLike,
        group: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
        iteration: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the sum-form loss w.r.t. the margins.

        Parameters
        ----------
        margin : array-like of shape (n,)
            Raw scores (log-odds of click).
        y : array-like of shape (n,)
            Funnel labels in {0, 1, 2}.
        group : array-like of shape (n,), optional
            Per-row group ids of any type and order; ``None`` = one group.
        weight : array-like of shape (n,), optional
            Non-negative per-row weights.
        iteration : int, default=0
            Boosting round; selects the pairs drawn in sampled mode.

        Returns
        -------
        grad, hess : ndarray of shape (n,), float64
            ``hess`` is Gauss–Newton (squared hinge) / exact (logistic), floored at 1e-16.
            With ``device="cuda"`` both are device arrays.
        """
        z = check_margin(margin)
        lab = check_labels(y, z.size)
        data = prepare_data(lab, group, check_weight(weight, z.size))
        return self._compute(z, data, int(iteration), reuse=False)

    def loss(
        self,
        margin: npt.ArrayLike,
        y: npt.ArrayLike,
        group: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
    ) -> float:
        """The sum-form loss ``Σ w_i BCE_i + λ·W·PWiseR`` (exact, whatever ``pairs`` is).

        Examples
        --------
        >>> import numpy as np
        >>> from gbdt_pwiser import PWiseRObjective
        >>> obj = PWiseRObjective(lam=0.0)
        >>> round(obj.loss(np.zeros(2), [0, 1]), 6) == round(2 * float(np.log(2)), 6)
        True
        """
        lam, m1, m2, loss_kind, _, _ = self._check_params()
        z = check_margin(margin)
        lab = check_labels(y, z.size)
        check_weight(weight, z.size)
        data = prepare_data(lab, group, weight)
        with _numba_threads(self.n_jobs):
            bce = K.bce_loss(z, data.y, data.w, data.has_w)
            if lam == 0.0 or data.n_active_groups == 0:
                return float(bce)
            sc, sn = K.pair_loss_sums(z, data.w, data.has_w, data.perm, data.aptr, data.anP, data.anC,
                                      m1, m2, loss_kind)
        sc_c, sc_n = data.scales(lam)
        return float(bce + sc_c * sc + sc_n * sn)

    def grad_hess_prepared(
        self, margin: npt.ArrayLike, data: PreparedData, iteration: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`grad_hess` for data prepared once with :func:`prepare_data`."""
        z = check_margin(margin)
        if z.size != data.n:
            raise ValueError(f"margin has {z.size} rows but the prepared data has {data.n}")
        return self._compute(z, data, int(iteration), reuse=False)

    _param_names = ("lam", "margin_click_only", "margin_no_click", "pair_loss", "pairs",
                    "random_state", "device", "n_jobs")

    def _compute(self, z: Any, data: PreparedData, iteration: int, reuse: bool):
        lam, m1, m2, loss_kind, k, seed = self._check_params()
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        if self.device.startswith("cuda"):
            from . import gpu

            return gpu.pwiser_grad_hess_cuda(self, z, data, iteration, reuse=reuse)
        g, h = self._buffers(z.size, reuse)
        with _numba_threads(self._threads(reuse), z.size):
            K.bce_pass(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g, h)
            if lam > 0.0 and data.n_active_groups > 0:
                sc_c, sc_n = data.scales(lam)
                key = K.round_key(seed, iteration)
                K.pair_pass(z, data.w, data.has_w, data.perm, data.aptr, data.anP, data.anC, data.pptr,
                            sc_c, sc_n, m1, m2, loss_kind, k, key, g, h, *data.scratch())
        return g, h

    def _prepare(self, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> PreparedData:
        return prepare_ptr(y, w, ptr)


def _read_dmatrix(dtrain: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Labels, per-row weights and group boundaries of an XGBoost DMatrix."""
    y = dtrain.get_label()
    n = y.size
    w = dtrain.get_weight()
    ptr = dtrain.get_uint_info("group_ptr")
    ptr = np.asarray(ptr, dtype=np.int64) if ptr.size > 1 else np.array([0, n], dtype=np.int64)
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


def check_ctr_prob(ctr_prob: Any, n: int, name: str = "ctr_prob") -> np.ndarray:
    """pCTR per row as float64 in [0, 1], clipped away from 0 and 1 for the logs."""
    arr = check_margin(ctr_prob, name).astype(np.float64, copy=False)
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} rows but margin has {n}")
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"{name} must be probabilities in [0, 1]")
    return np.clip(arr, 1e-12, 1.0 - 1e-12)


class _ESMMData:
    def __init__(self, y: np.ndarray, w: np.ndarray | None) -> None:
        self.n = y.size
        self.y = y
        self.has_w = w is not None
        self.w = w if w is not None else np.zeros(0)


class EntireSpaceCVRObjective(_CustomObjective):
    """Entire-space CVR objective: ESMM for trees (SPEC §5).

    Trains the CVR booster on *all* exposures with the loss
    ``BCE(pCTR_i · σ(u_i), conversion_i)`` on its margin ``u``, where pCTR
    comes from an already trained CTR model and stays fixed. pCVR then means
    P(conversion | click) over the whole exposure space, which removes the
    sample-selection bias of training on clicked rows only.

    Gradient ``-v (1 - q) + (1 - v) a q (1 - q) / (1 - a q)`` with
    ``a = pCTR``, ``q = σ(u)``; Hessian: the Fisher information
    ``a q (1 - q)² / (1 - a q)`` (non-negative; the exact second derivative can
    be negative for ``v = 0``), floored at 1e-16.

    Parameters
    ----------
    ctr_prob : array-like of shape (n,), optional
        pCTR of the training rows, used by the XGBoost/LightGBM adapters.
        :meth:`grad_hess` can take it per call instead.
    device : {"cpu", "cuda"}, default="cpu"
    n_jobs : int, optional
        Threads for the CPU kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser import EntireSpaceCVRObjective
    >>> obj = EntireSpaceCVRObjective()
    >>> g, h = obj.grad_hess(np.zeros(3), [0, 1, 2], ctr_prob=[0.1, 0.5, 0.5])
    >>> bool(np.all(h > 0)), round(float(g[2]), 3)
    (True, -0.5)
    """

    _param_names = ("ctr_prob", "device", "n_jobs")

    def __init__(self, ctr_prob: npt.ArrayLike | None = None, device: str = "cpu",
                 n_jobs: int | None = None) -> None:
        self.ctr_prob = ctr_prob
        self.device = device
        self.n_jobs = n_jobs
        self._check_params()
        self._reset_adapter_state()

    def _check_params(self) -> None:
        check_device(self.device)
        if self.n_jobs is not None and (isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, (int, np.integer)) or self.n_jobs == 0):
            raise ValueError(f"n_jobs must be None, -1 or a positive int, got {self.n_jobs!r}")

    def _prepare(self, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> _ESMMData:
        return _ESMMData(y, w)

    def _ctr(self, ctr_prob: Any, n: int) -> np.ndarray:
        if ctr_prob is None:
            ctr_prob = self.ctr_prob
        if ctr_prob is None:
            raise ValueError("ctr_prob (pCTR of every row) is required by the entire-space CVR objective")
        cached = getattr(self, "_ctr_cache", None)
        if cached is not None and cached[0] is ctr_prob:
            return cached[1]
        a = check_ctr_prob(ctr_prob, n)
        self._ctr_cache = (ctr_prob, a)
        return a

    def grad_hess(
        self,
        margin: npt.ArrayLike,
        y: npt.ArrayLike,
        ctr_prob: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Fisher Hessian w.r.t. the CVR margins.

        Parameters
        ----------
        margin : array-like of shape (n,)
            CVR margins ``u``.
        y : array-like of shape (n,)
            Funnel labels; conversions are ``y == 2``.
        ctr_prob : array-like of shape (n,), optional
            pCTR per row (defaults to the constructor's ``ctr_prob``).
        weight : array-like of shape (n,), optional
        """
        self._check_params()
        z = check_margin(margin)
        lab = check_labels(y, z.size)
        w = check_weight(weight, z.size)
        return self._run(z, _ESMMData(lab, w), self._ctr(ctr_prob, z.size), reuse=False)

    def loss(self, margin: npt.ArrayLike, y: npt.ArrayLike, ctr_prob: npt.ArrayLike | None = None,
             weight: npt.ArrayLike | None = None) -> float:
        """Sum over rows of ``w_i · BCE(pCTR_i σ(u_i), v_i)``."""
        z = check_margin(margin)
        lab = check_labels(y, z.size)
        w = check_weight(weight, z.size)
        d = _ESMMData(lab, w)
        with _numba_threads(self.n_jobs):
            return float(K.esmm_loss(z, d.y, self._ctr(ctr_prob, z.size), d.w, d.has_w))

    def _compute(self, z: Any, data: _ESMMData, iteration: int, reuse: bool):
        return self._run(z, data, self._ctr(None, data.n), reuse)

    def _run(self, z: Any, data: _ESMMData, a: np.ndarray, reuse: bool):
        if self.device.startswith("cuda"):
            from . import gpu

            return gpu.esmm_grad_hess_cuda(self, z, data, a, reuse=reuse)
        g, h = self._buffers(z.shape[0], reuse)
        with _numba_threads(self._threads(reuse), z.shape[0]):
            K.esmm_pass(z, data.y, a, data.w, data.has_w, HESSIAN_FLOOR, g, h)
        return g, h
