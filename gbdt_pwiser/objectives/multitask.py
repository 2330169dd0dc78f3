"""``SharedCTCVRObjective``: one multi-output booster for CTR and CVR that shares every split.

The tree analogue of a shared-bottom network: an XGBoost booster with vector
leaves (``multi_strategy="multi_output_tree"``) outputs two margins per row,
``z`` (CTR) and ``u`` (CVR), and every tree splits once for both. The loss is

    L = Σ_i w_i [BCE(σ(z_i), c_i) + BCE(σ(z_i)·σ(u_i), v_i)] + λ·W·PWiseR(z)

(PWiseR on ``z`` only, as for the CTR booster of the chain). The CTR column's
BCE + λ·PWiseR comes from :class:`PWiseRObjective` itself; this module adds the
pCTCVR (entire-space) term on both columns with :mod:`gbdt_pwiser.kernels.multitask`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK, HESSIAN_FLOOR
from .._validation import check_labels, check_margin_matrix, check_real, check_weight
from ..kernels import multitask as KM
from ..kernels import passes as KP
from ._adapters import _CustomObjective
from ._prepare import PreparedData, prepare_ptr
from .pwiser import PWiseRObjective, initial_margin, prepare_data

__all__ = ["SharedCTCVRObjective", "SharedLoss", "initial_margins", "shared_probabilities"]


class SharedLoss(NamedTuple):
    """The two parts of the shared booster's loss (sum form)."""

    #: ``Σ w_i BCE(pCTR_i, c_i) + λ·W·PWiseR(z)``: the CTR booster's loss (:meth:`PWiseRObjective.loss`).
    ctr: float
    #: ``Σ w_i BCE(pCTR_i·pCVR_i, v_i)``: the entire-space pCTCVR term.
    ctcvr: float


def initial_margins(y: npt.ArrayLike, weight: npt.ArrayLike | None = None) -> np.ndarray:
    """Starting margins ``[z0, u0]`` of the shared booster: log-odds of the CTR and of the CVR among clicks.

    Then ``σ(z0)·σ(u0)`` is the (weighted) conversion rate of all exposures.
    Give it to ``xgb.train`` as ``params["base_score"] = initial_margins(y).tolist()``
    (a custom objective runs with an identity link, so ``base_score`` is a margin).
    Without clicks ``u0`` is the log-odds of 1e-6, like a rate of 0.

    Examples
    --------
    >>> from gbdt_pwiser.objectives import initial_margins
    >>> initial_margins([0, 0, 1, 2]).round(4)
    array([0., 0.])
    """
    lab = check_labels(y)
    w = check_weight(weight, lab.size)
    z0 = initial_margin(lab, w)
    clicked = lab >= 1
    wc = None if w is None else w[clicked]
    if not np.any(clicked) or (wc is not None and wc.sum() <= 0):
        return np.array([z0, float(np.log(1e-6 / (1 - 1e-6)))])
    # among clicks, conversion (2) vs click-only (1) is "click" vs "no click" of initial_margin
    return np.array([z0, initial_margin(lab[clicked] - 1, wc)])


def shared_probabilities(margins: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pCTR, pCVR, pCTCVR)`` from the shared booster's ``(n, 2)`` raw output ``[z, u]``.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.objectives import shared_probabilities
    >>> ctr, cvr, ctcvr = shared_probabilities(np.array([[0.0, 0.0]]))
    >>> float(ctr[0]), float(cvr[0]), float(ctcvr[0])
    (0.5, 0.5, 0.25)
    """
    from scipy.special import expit

    m = check_margin_matrix(margins).astype(np.float64, copy=False)
    ctr = expit(m[:, 0])
    cvr = expit(m[:, 1])
    return ctr, cvr, ctr * cvr


class SharedCTCVRObjective(_CustomObjective):
    """Multi-task objective of one XGBoost booster with two outputs: CTR margin ``z``, CVR margin ``u``.

    Trained with ``multi_strategy="multi_output_tree"`` every tree has vector
    leaves ``(Δz, Δu)``, so both tasks share every split (a shared-bottom model
    made of trees). The loss (sum form, ``W = Σ w_i``) is

        L = Σ_i w_i [BCE(a_i, c_i) + BCE(t_i, v_i)] + λ·W·PWiseR(z)

    with ``a = σ(z)`` (pCTR), ``q = σ(u)`` (pCVR), ``t = a·q`` (pCTCVR), click
    ``c`` and conversion ``v``. The CTR column gets BCE on clicks + λ·PWiseR
    exactly as :class:`PWiseRObjective` computes it, plus
    ``ctcvr_weight_ctr`` times the pCTCVR term's gradient; the CVR column gets
    the pCTCVR term (the entire-space loss, as in ESMM, whose two towers both
    learn from it):

        ∂BCE(t, v)/∂z = (t − v)(1 − a)/(1 − t)     ∂BCE(t, v)/∂u = (t − v)(1 − q)/(1 − t)

    Hessians are Gauss–Newton/exact for the CTR part (as in
    :class:`PWiseRObjective`) and the Fisher forms ``t (1 − a)²/(1 − t)``
    (z) and ``t (1 − q)²/(1 − t)`` (u) for the pCTCVR term (non-negative), all
    floored at 1e-16.

    Parameters
    ----------
    lam, margin_click_only, margin_no_click, pair_loss, pairs, random_state, n_jobs
        As in :class:`PWiseRObjective`; they shape the CTR column's BCE + λ·PWiseR.
    ctcvr_weight_ctr : float, default=1.0
        Share ``β ≥ 0`` of the pCTCVR term on the CTR margin ``z``. 1: the loss
        as written (both margins learn from pCTCVR). 0: the pCTCVR term trains
        ``u`` only, ``z`` learns from clicks (and PWiseR) alone, as in the
        chain with an entire-space CVR booster. In between (or above 1) the
        ``z`` column follows ``BCE + λ·PWiseR + β·BCE(t, v)`` while the ``u``
        column is unchanged; for ``β ≠ 1`` that is no longer the gradient of
        one scalar loss (like a partial stop-gradient in a network).

    Attributes
    ----------
    iteration_ : int
        Rounds seen by the XGBoost adapter since the last training run started.

    Notes
    -----
    ``xgb.train(params, xgb.DMatrix(X, label=y, qid=...), obj=obj)`` with
    ``params = {"multi_strategy": "multi_output_tree", "tree_method": "hist",
    "num_target": 2, "base_score": initial_margins(y).tolist(),
    "disable_default_eval_metric": 1, ...}``. The funnel label ``y`` stays one
    column; ``num_target=2`` gives the model its two outputs (XGBoost would
    infer one from the label). ``booster.predict(d, output_margin=True)`` is
    ``[z, u]`` of shape (n, 2); :func:`shared_probabilities` turns it into
    pCTR, pCVR and pCTCVR. XGBoost 3.2's multi-output trees refuse categorical
    features: encode them as codes first
    (:class:`gbdt_pwiser.sklearn._encode.CategoricalCodes`). LightGBM has no
    multi-output trees.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.objectives import SharedCTCVRObjective
    >>> obj = SharedCTCVRObjective(lam=1.0)
    >>> y = np.array([2, 1, 0, 0, 2, 0])
    >>> group = np.array(["a", "a", "a", "b", "b", "b"])
    >>> grad, hess = obj.grad_hess(np.zeros((6, 2)), y, group=group)
    >>> grad.shape, bool(np.all(hess > 0))
    ((6, 2), True)
    >>> float(grad[4, 1])  # a conversion: −(1 − q) = −0.5
    -0.5
    """

    _param_names: tuple[str, ...] = (
        "lam",
        "margin_click_only",
        "margin_no_click",
        "pair_loss",
        "pairs",
        "random_state",
        "n_jobs",
        "ctcvr_weight_ctr",
    )

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
    ) -> None:
        self.lam = lam
        self.margin_click_only = margin_click_only
        self.margin_no_click = margin_no_click
        self.pair_loss = pair_loss
        self.pairs = pairs
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.ctcvr_weight_ctr = ctcvr_weight_ctr
        self._check_params()
        self._reset_adapter_state()

    # ------------------------------------------------------------------ parameters
    def _ctr_objective(self) -> PWiseRObjective:
        """The CTR column's objective (validates the shared parameters); rebuilt when they change."""
        params = {k: getattr(self, k) for k in PWiseRObjective._param_names if k != "device"}
        cached = getattr(self, "_ctr", None)
        if cached is None or cached._get_params() != {**params, "device": "cpu"}:
            cached = PWiseRObjective(**params)
            cached._out_dtype = np.float64  # its gradients are summed with the pCTCVR terms here
            self._ctr = cached
        return cached

    def _check_params(self) -> float:
        self._ctr_objective()._check_params()
        return check_real(self.ctcvr_weight_ctr, "ctcvr_weight_ctr", lo=0.0)

    # ------------------------------------------------------------------ core
    def grad_hess(
        self,
        margins: npt.ArrayLike,
        y: npt.ArrayLike,
        group: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
        iteration: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the sum-form loss w.r.t. both margins.

        Parameters
        ----------
        margins : array-like of shape (n, 2)
            Raw scores ``[z, u]``: CTR and CVR log-odds.
        y : array-like of shape (n,)
            Funnel labels in {0, 1, 2}.
        group : array-like of shape (n,), optional
            Per-row group ids of any type and order (for PWiseR); ``None`` = one group.
        weight : array-like of shape (n,), optional
            Non-negative per-row weights.
        iteration : int, default=0
            Boosting round; selects the pairs drawn in sampled mode.

        Returns
        -------
        grad, hess : ndarray of shape (n, 2), float64
            Column 0 for ``z``, column 1 for ``u``; ``hess`` floored at 1e-16.
        """
        m = check_margin_matrix(margins)
        lab = check_labels(y, m.shape[0])
        data = self._prepare_call(lab, group, check_weight(weight, m.shape[0]))
        return self._compute(m, data, int(iteration), reuse=False)

    def _prepare_call(self, lab: np.ndarray, group: Any, w: np.ndarray | None) -> PreparedData:
        """Prepared data of :meth:`grad_hess`'s rows (an extension point, as in :class:`PWiseRObjective`)."""
        return prepare_data(lab, group, w)

    def grad_hess_prepared(
        self, margins: npt.ArrayLike, data: PreparedData, iteration: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`grad_hess` for data prepared once with :func:`~gbdt_pwiser.prepare_data`."""
        m = check_margin_matrix(margins)
        if m.shape[0] != data.n:
            raise ValueError(f"margins have {m.shape[0]} rows but the prepared data has {data.n}")
        return self._compute(m, data, int(iteration), reuse=False)

    def loss_terms(
        self,
        margins: npt.ArrayLike,
        y: npt.ArrayLike,
        group: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
    ) -> SharedLoss:
        """The loss's two parts: ``ctr`` (BCE on clicks + λ·W·PWiseR) and ``ctcvr`` (Σ w BCE(t, v)).

        :meth:`grad_hess` returns ``∂(ctr + β·ctcvr)/∂z`` and ``∂ctcvr/∂u``
        (``β = ctcvr_weight_ctr``); PWiseR is exact whatever ``pairs`` is.
        """
        self._check_params()
        m = check_margin_matrix(margins)
        lab = check_labels(y, m.shape[0])
        w = check_weight(weight, m.shape[0])
        z = np.ascontiguousarray(m[:, 0])
        u = np.ascontiguousarray(m[:, 1])
        ctr = self._ctr.loss(z, lab, group, w)
        ctcvr = KP.row_sum(
            KM.ctcvr_loss_rows,
            z.size,
            self._threads(False, z.size),
            z,
            u,
            lab,
            w if w is not None else np.zeros(0),
            w is not None,
        )
        return SharedLoss(ctr, float(ctcvr))

    def loss(
        self,
        margins: npt.ArrayLike,
        y: npt.ArrayLike,
        group: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
    ) -> float:
        """The sum-form loss as written: ``Σ w [BCE(a, c) + BCE(t, v)] + λ·W·PWiseR(z)``.

        It does not depend on ``ctcvr_weight_ctr`` (see :meth:`loss_terms`).

        Examples
        --------
        >>> import numpy as np
        >>> from gbdt_pwiser.objectives import SharedCTCVRObjective
        >>> obj = SharedCTCVRObjective(lam=0.0)
        >>> # one non-click at z = u = 0: log 2 + (−log(1 − 1/4))
        >>> round(obj.loss(np.zeros((1, 2)), [0]), 6) == round(float(np.log(2) - np.log(0.75)), 6)
        True
        """
        return float(sum(self.loss_terms(margins, y, group, weight)))

    def _compute(self, m: np.ndarray, data: PreparedData, iteration: int, reuse: bool) -> tuple[Any, Any]:
        beta = self._check_params()
        z = np.ascontiguousarray(m[:, 0])
        u = np.ascontiguousarray(m[:, 1])
        self._ctr._booster_threads = self._booster_threads  # as this adapter read them
        gz, hz = self._ctr._compute(z, data, iteration, reuse)  # BCE on clicks + λ·PWiseR
        n = z.size
        g, h = self._buffers(n, reuse, (2,))
        KP.rows(
            KM.shared_ctcvr_rows,
            n,
            self._threads(reuse, n),
            z,
            u,
            data.y,
            data.w,
            data.has_w,
            beta,
            HESSIAN_FLOOR,
            gz,
            hz,
            g,
            h,
        )
        return g, h

    # ------------------------------------------------------------------ booster adapters
    def _prepare(self, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> PreparedData:
        return prepare_ptr(y, w, ptr)

    def _check_predictions(self, z: Any) -> np.ndarray:
        # predictions are (n, 2): the CTR and CVR margins of each row
        return check_margin_matrix(z, name="predictions")

    def __call__(self, a: Any, b: Any, sample_weight: Any = None, group: Any = None) -> tuple[Any, Any]:
        """Objective callable for ``xgb.train`` (``obj(predt, dtrain)``, predt of shape (n, 2)).

        The scikit-learn wrapper form ``obj(y_true, y_pred[, sample_weight[, group]])``
        (``XGBRegressor(objective=obj, multi_strategy="multi_output_tree")``) takes
        ``y_true`` as funnel labels or as ``[click, conversion]`` of shape (n, 2).
        """
        mod = type(b).__module__ or ""
        if mod.startswith("lightgbm"):
            raise TypeError(
                "LightGBM has no multi-output trees; train the shared CTR/CVR booster with XGBoost "
                '(multi_strategy="multi_output_tree")'
            )
        if not mod.startswith("xgboost") and np.ndim(a) == 2:
            from .._labels import as_funnel

            a = as_funnel(a, "y_true")
        return super().__call__(a, b, sample_weight, group)
