"""``PWiseRObjective``: BCE + λ·PWiseR as a custom objective (docs/mathematics.md §2–§4, §7).

This module validates, prepares and dispatches; the mathematics is in
:mod:`gbdt_pwiser.kernels`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK, HESSIAN_FLOOR
from .._validation import (
    NoConversionWarning,
    check_device,
    check_labels,
    check_lam_margins,
    check_margin,
    check_n_jobs,
    check_pair_loss,
    check_pairs,
    check_random_state,
    check_weight,
    group_layout,
    non_finite_margin,
)
from ..kernels import cpu as K
from ..kernels import passes as KP
from ..kernels.groups import Pairs, Rows
from ._adapters import _CustomObjective
from ._prepare import PreparedData, prepare_codes, prepare_ptr

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
        rate = float(np.sum(click * w) / tot)  # no BLAS call: see _prepare._finish
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
    return _prepare_checked(lab, group, check_weight(weight, lab.size), group_ptr)


def _prepare_checked(lab: np.ndarray, group: Any, w: np.ndarray | None, group_ptr: Any = None) -> PreparedData:
    """:func:`prepare_data` for labels and weights that are validated already.

    Contiguous numeric group ids cost two vectorised passes (run starts, and a
    sort of the run ids only, skipped when they rise); no hashing or sort over all rows.
    """
    n = lab.size
    if group_ptr is not None:
        if group is not None:
            raise ValueError("give either group or group_ptr, not both")
        ptr = np.ascontiguousarray(group_ptr, dtype=np.int64)
        if ptr.ndim != 1 or ptr.size < 1 or ptr[0] != 0 or ptr[-1] != n or np.any(np.diff(ptr) < 0):
            raise ValueError(f"group_ptr must rise from 0 to n={n}")
        return prepare_ptr(lab, w, ptr)
    if group is None:
        return prepare_ptr(lab, w, np.array([0, n], dtype=np.int64))
    runs, codes, n_groups = group_layout(group, n)
    if runs is not None:
        return prepare_ptr(lab, w, runs)
    assert codes is not None  # group_layout gives the codes when the groups are not contiguous runs
    if n and np.all(codes[1:] >= codes[:-1]):  # e.g. string ids that come grouped
        ptr = np.searchsorted(codes, np.arange(n_groups + 1), side="left").astype(np.int64)
        return prepare_ptr(lab, w, ptr)
    return prepare_codes(lab, w, codes, n_groups)


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
        squared hinge, ``O(|P|·|partners|)`` per group for logistic). An int
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
        Threads for the CPU kernels (``-1``: every core). ``None``: inside training, the threads
        the booster trains on, as its training data tells them (the ``DMatrix``'s ``nthread``, else
        XGBoost's global ``nthread``; LightGBM's ``num_threads``, which ``lgb.train`` and
        ``lightgbm.dask`` put in the ``Dataset``; each Dask worker's own), else every core (the
        boosters' default); every core for :meth:`grad_hess`. ``xgb.train(params, dtrain)`` does
        not show ``params["nthread"]`` to the objective: build the ``DMatrix`` with the same
        ``nthread`` or set ``n_jobs``. Inside ``xgb.train``/``lgb.train`` (and the estimators) the
        kernels run on the booster's own OpenMP threads, which are still spinning from the
        booster's last parallel region (see ``docs/performance.md``); elsewhere on a pool of threads
        that sleep between calls. The gradients are the same bits on any number of threads.
        A pass takes at most one thread per 65,536 rows.

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
      sizes all rows form one group. Rounds: XGBoost >= 3.2 passes the true
      boosting round (the objective is an ``xgboost.objective.Objective``);
      elsewhere rounds are counted and restart when a new run starts.
    * Called by a booster (the three conventions above), the CPU objective returns float32
      gradients and Hessians: the float64 sums rounded to nearest once, the values XGBoost and
      LightGBM would have kept of float64 ones (the same model, bit for bit), without the
      conversion they made of them every round. :meth:`grad_hess` returns the float64 values.
    * Labels without any conversion (no 2) with ``lam > 0`` raise a
      :class:`~gbdt_pwiser.objectives.NoConversionWarning` once per training
      data in the booster adapters (the pair term is then zero). LightGBM turns
      NaN labels into 0 when it constructs a ``Dataset``; validate labels first.

    Extension points (for subclasses, e.g. data-parallel training that needs
    global normalisers): :meth:`_prepare` ``(y, w, ptr) -> PreparedData``, once
    per training data (``PreparedData.total_weight``, ``pair_weight_c`` and
    ``pair_weight_n`` are the normalisers ``W`` and the per-term pair totals),
    :meth:`_check_prepared` ``(data)`` (the warnings) and :meth:`_compute`
    ``(z, data, iteration, reuse) -> (grad, hess)``, every round.

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
        check_n_jobs(self.n_jobs)
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
        data = self._prepare_call(lab, group, check_weight(weight, z.size))
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
        data = self._prepare_call(lab, group, check_weight(weight, z.size))
        threads = self._threads(False, z.size)
        bce = KP.bce_loss(z, data.y, data.w, data.has_w, threads)
        if lam == 0.0 or data.n_active_groups == 0:
            return float(bce)
        sc, sn = KP.pair_loss_sums(z, data.w, data.has_w, data.groups, m1, m2, loss_kind, threads)
        sc_c, sc_n = data.scales(lam)
        return float(bce + sc_c * sc + sc_n * sn)

    def _prepare_call(self, lab: np.ndarray, group: Any, w: np.ndarray | None) -> PreparedData:
        """Prepared data of one :meth:`grad_hess`/:meth:`loss` call (validated labels and weights).

        An extension point, like :meth:`_prepare` for the booster adapters: a subclass that
        changes what the prepared data carries (e.g. global normalisers) overrides both.
        """
        return _prepare_checked(lab, group, w)

    def grad_hess_prepared(
        self, margin: npt.ArrayLike, data: PreparedData, iteration: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`grad_hess` for data prepared once with :func:`~gbdt_pwiser.prepare_data`."""
        z = check_margin(margin)
        if z.size != data.n:
            raise ValueError(f"margin has {z.size} rows but the prepared data has {data.n}")
        return self._compute(z, data, int(iteration), reuse=False)

    _param_names: tuple[str, ...] = (
        "lam",
        "margin_click_only",
        "margin_no_click",
        "pair_loss",
        "pairs",
        "random_state",
        "device",
        "n_jobs",
    )

    def _compute(self, z: Any, data: PreparedData, iteration: int, reuse: bool) -> tuple[Any, Any]:
        """Extension point: gradient and Hessian of one round for prepared ``data``.

        ``iteration`` selects the pairs of the sampled mode; ``reuse`` lets the
        adapters reuse one pair of output buffers across rounds.
        """
        params = self._check_params()
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        if self.device.startswith("cuda"):
            from . import _cuda as gpu

            return gpu.pwiser_grad_hess_cuda(self, z, data, iteration, reuse=reuse)
        g, h = self._buffers(z.size, reuse)
        if self._cpu_pass(z, data, params, iteration, g, h, self._threads(reuse, z.size)):
            # only a booster's margins get here unchecked (_kernels_check_finite)
            raise non_finite_margin(z, "predictions")
        return g, h

    #: The CPU kernels count NaN and infinite margins as they read them (:meth:`_compute` raises),
    #: the CUDA path checks host margins before it copies them: the adapters check no value twice.
    _kernels_check_finite = True

    def _cpu_pass(
        self,
        z: np.ndarray,
        data: PreparedData,
        params: tuple,
        iteration: int,
        g: np.ndarray,
        h: np.ndarray,
        threads: int,
    ) -> int:
        """The CPU kernels' pass of one round into ``g, h``; returns the number of non-finite margins."""
        lam, m1, m2, loss_kind, k, seed = params
        if lam > 0.0 and data.n_active_groups > 0:
            sc_c, sc_n = data.scales(lam)
            pairs = Pairs(sc_c, sc_n, m1, m2, loss_kind, k, K.round_key(seed, iteration))
            if data.chunks is not None:  # contiguous groups: BCE then pairs, chunk by chunk, in cache
                parts = min(threads, data.chunks[0].size - 1)
                pp, pd, ga, ha = data.row_buffers(parts * data.max_chunk_rows)
                rows = Rows(z, data.y, data.w, data.has_w, pp, pd, 0)
                return KP.bce_pair_pass(
                    rows, HESSIAN_FLOOR, *data.chunks, data.groups, pairs, data.scratch(), (ga, ha), g, h, threads
                )
            # p and σ' of every row computed once, then read by the pair terms
            pp, pd, ga, ha = data.row_buffers(data.n)
            rows = Rows(z, data.y, data.w, data.has_w, pp, pd, 0)
            return KP.pair_pass(rows, HESSIAN_FLOOR, data.groups, pairs, data.scratch(), (ga, ha), g, h, threads)
        return KP.bce_pass(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g, h, threads)

    def _prepare(self, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> PreparedData:
        """Extension point: validated labels, weights and group boundaries → :class:`PreparedData`.

        Called once per training data by the XGBoost/LightGBM/scikit-learn adapters.
        A subclass may fill in global normalisers here (``total_weight``,
        ``pair_weight_c``, ``pair_weight_n`` of the whole data set, e.g. for
        data-parallel training) before the data is used.
        """
        return prepare_ptr(y, w, ptr)

    def _check_prepared(self, data: PreparedData) -> None:
        """Warn once per training data when λ > 0 but no label is a conversion (2)."""
        if data.n == 0 or data.n_active_groups > 0 or self._check_params()[0] == 0.0:
            return
        if not np.any(data.y == 2):
            warnings.warn(
                "the training labels hold no conversion (label 2), so the pairwise term is zero and "
                "PWiseR reduces to BCE; funnel labels are click + conversion in {0, 1, 2} "
                "(build them with funnel_label(click, conversion))",
                NoConversionWarning,
                stacklevel=4,
            )
