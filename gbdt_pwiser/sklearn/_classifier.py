"""``CTCVRClassifier``: the chained CTR → CVR gradient-boosted estimator (docs/mathematics.md §5, §7).

The estimator is glue and contains no loss mathematics: the CTR booster is
trained with :class:`~gbdt_pwiser.objectives.PWiseRObjective`, the entire-space
CVR booster with :class:`~gbdt_pwiser.objectives.EntireSpaceCVRObjective`, the
clicked-space CVR booster with the library's native log-loss, and evaluation
uses :mod:`gbdt_pwiser.metrics`. Everything that differs between XGBoost and
LightGBM lives in :mod:`._backends`; feature checks in :mod:`._inputs`; the
saved-model format in :mod:`._persistence`.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .. import metrics as M
from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._external import ParquetLog
from .._labels import as_funnel
from .._validation import PAIR_LOSSES, check_random_state, group_codes
from ..objectives import EntireSpaceCVRObjective, PWiseRObjective, initial_margin
from ._backends import BACKENDS, EvalData, FitResult, TrainData, grad_fn
from ._base import _ChainBase
from ._rows import InMemoryRows
from ._shared import check_shared, clear_fitted, fit_shared
from ._inputs import (
    NoGroupWarning,
    check_eval_set,
    check_lengths,
    check_monitored,
    check_native_params,
    check_sample_weight,
    check_X,
    n_rows,
    take,
    warn_no_group,
)

__all__ = ["CTCVRClassifier", "NoGroupWarning"]

_CTR_METRICS = ("auc_click", "auc_conv", "auc_click_group", "auc_conv_group")  # keys of metrics.METRICS


class CTCVRClassifier(_ChainBase):
    """Chained CTR → CVR gradient-boosted classifier with the PWiseR CTR loss.

    Two boosters are trained (docs/mathematics.md §5): a **CTR booster** on all exposures
    with BCE + λ·PWiseR (:class:`~gbdt_pwiser.PWiseRObjective`), whose pair
    term pushes each conversion above the click-only and non-clicked
    exposures of its group, and a **CVR booster** either on the clicked
    exposures with plain log-loss (``cvr_space="clicked"``) or on all
    exposures with the entire-space (ESMM) loss ``BCE(pCTR·pCVR, conversion)``
    (``cvr_space="entire"``, :class:`~gbdt_pwiser.EntireSpaceCVRObjective`).
    ``pCTCVR = pCTR · pCVR`` is the probability of a conversion per exposure;
    as a scikit-learn classifier the target class is "converts"
    (``classes_ = [0, 1]``) and :meth:`score` is the CTCVR AUC.

    With ``structure="shared"`` a single XGBoost booster with two outputs
    ``[z, u]`` (``multi_strategy="multi_output_tree"``) replaces the two: its
    trees split once for both tasks, and it is trained with
    :class:`~gbdt_pwiser.objectives.SharedCTCVRObjective` (BCE on clicks +
    λ·PWiseR on ``z``, plus the entire-space ``BCE(σ(z)·σ(u), conversion)``).

    Parameters
    ----------
    backend : {"xgboost", "lightgbm"}, default="xgboost"
        Gradient-boosting library of both boosters.
    structure : {"chain", "shared"}, default="chain"
        ``"chain"``: a CTR booster, then a CVR booster (above). ``"shared"``:
        one multi-output XGBoost booster for both (needs ``backend="xgboost"``
        and ``device="cpu"``; its native parameters go in ``ctr_params``;
        ``cvr_space`` and ``ctr_stopping_metric`` do not apply: it is
        entire-space by construction and early-stops on the CTCVR AUC).
    ctcvr_weight_ctr : float, default=1.0
        ``structure="shared"`` only: share β ≥ 0 of the pCTCVR term's gradient
        on the CTR margin (1: the loss as written; 0: ``z`` learns from clicks
        and PWiseR alone). See :class:`~gbdt_pwiser.objectives.SharedCTCVRObjective`.
    lam : float, default=1.0
        Weight λ ≥ 0 of the pairwise term of the CTR loss; 0 gives plain BCE.
    margin_click_only : float, default=0.02
        Margin of conversion-vs-click-only pairs.
    margin_no_click : float, default=0.02
        Margin of conversion-vs-non-click pairs.
    pair_loss : {"squared_hinge", "logistic"}, default="squared_hinge"
        Pair loss of the PWiseR term.
    pairs : "all" or int, default="all"
        Exact all-pairs mode or ``k`` sampled partners per conversion and term.
    cvr_space : {"clicked", "entire"}, default="clicked"
        Training space of the CVR booster (see above).
    n_estimators : int, default=100
        Boosting rounds of each booster (an upper bound with early stopping).
    learning_rate : float, default=0.1
        Shrinkage of both boosters.
    max_depth : int or None, default=6
        Maximum tree depth (LightGBM: also ``num_leaves = min(31, 2**max_depth)``);
        ``None`` keeps the library's default.
    ctr_params, cvr_params : dict, optional
        Extra native parameters of the CTR / CVR booster (e.g. ``subsample``,
        ``reg_lambda``, ``min_child_weight`` for XGBoost; ``num_leaves``,
        ``min_data_in_leaf``, ``feature_fraction`` for LightGBM). They override
        the estimator's settings, except the objective, the number of rounds,
        the starting margin and the metrics, which the estimator owns.
    early_stopping_rounds : int, optional
        Stop a booster when its metric on the **last** ``eval_set`` has not
        improved for this many rounds; prediction then uses the best round.
        The CTR booster watches ``ctr_stopping_metric``; the CVR booster the
        conversion AUC of pCVR over the clicked rows (``cvr_space="clicked"``)
        or of pCTCVR over all rows (``cvr_space="entire"``, the quantity its
        loss fits).
    ctr_stopping_metric : {"auc_click", "auc_conv", "auc_click_group", "auc_conv_group"}, default="auc_click"
        Early-stopping metric of the CTR booster, computed on pCTR: AUC/GAUC
        against clicks (the booster's own label, the stable default) or against
        conversions (what the PWiseR term targets; noisier, since conversions
        are rare). GAUC uses the eval set's groups.
    device : {"cpu", "cuda"}, default="cpu"
        Where the objectives compute gradients, and XGBoost's ``device``.
        ``"cuda"`` needs ``backend="xgboost"`` (LightGBM accepts a custom
        objective's gradients as host arrays only; its own GPU tree learner can
        be chosen with ``device_type`` in ``ctr_params``/``cvr_params``).
    n_jobs : int, optional
        Threads of the boosters (``nthread`` / ``num_threads``); ``-1`` for all
        cores, ``None`` for the libraries' defaults. The objectives' kernels run
        on one thread inside the boosting loop, where they cost a few per cent
        of a round (see :class:`~gbdt_pwiser.PWiseRObjective`).
    random_state : int, optional
        Seed of both boosters (row/column subsampling) and of the sampled pair
        mode. ``None`` means 0: fits are deterministic unless you change it.
    verbose : bool, default=False
        Show a progress bar over the boosting rounds of each booster (tqdm, on
        standard error), when standard error is a terminal; elsewhere (logs,
        CI, redirected output) nothing is written.

    Attributes
    ----------
    backend_, structure_ : str
        The ``backend`` and ``structure`` the model was fitted with: prediction
        and :meth:`save_model` use these, so ``set_params`` after ``fit``
        affects the next fit only.
    booster_ : xgboost.Booster
        ``structure="shared"`` only (the chain attributes below are then
        absent), with ``init_margins_`` (the 2-vector start ``[z0, u0]``),
        ``n_rounds_``, ``best_iteration_`` and ``categorical_codes_`` (the
        category codes the booster sees; see :mod:`._shared`).
    ctr_booster_ : xgboost.Booster or lightgbm.Booster
        The CTR booster (raw margin = log-odds of click; for LightGBM add
        ``ctr_init_margin_``, its ``init_score``).
    cvr_booster_ : xgboost.Booster, lightgbm.Booster or None
        The CVR booster; ``None`` when the training data had no conversion.
    ctr_init_margin_, cvr_init_margin_ : float
        Starting margins: log-odds of the click rate for the CTR booster, of the
        conversion rate among clicks for the entire-space CVR booster (the
        clicked-space booster uses the library's own intercept, reported as 0).
    cvr_fallback_rate_ : float or None
        Constant pCVR used when the training data had no conversion
        (``0.5 / (clicks + 1)``, clicks counted by ``sample_weight``, so a
        weight of k is k repeated rows), else ``None``.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: does the exposure convert.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in :meth:`fit` (only for string column names).
    best_iteration_ctr_, best_iteration_cvr_ : int or None
        0-based best round of each booster with early stopping, else ``None``.
    n_rounds_ctr_, n_rounds_cvr_ : int
        Rounds each booster uses for prediction.
    evals_result_ : dict
        ``{"ctr": {"valid_0": {metric: [...]}, ...}, "cvr": {...}}`` when
        ``eval_set`` was given.

    Notes
    -----
    * Groups: ``group`` holds per-row ids of any type and order. The training
      rows are stably sorted by group before the CTR data is built (XGBoost
      needs a sorted ``qid``, LightGBM contiguous ``group`` sizes); predictions
      do not depend on row order. Without ``group`` all rows form one group;
      with ``lam > 0`` that draws a :class:`NoGroupWarning` (a lost group is the
      usual cause), unless ``group="all"`` says so on purpose.
    * Starting margins: a custom objective has no intercept, so the CTR booster
      starts from :func:`~gbdt_pwiser.initial_margin` (``base_score`` in XGBoost,
      ``init_score`` in LightGBM, added back to LightGBM's raw predictions).
    * Metadata routing (scikit-learn ≥ 1.4): with
      ``sklearn.set_config(enable_metadata_routing=True)`` call
      ``set_fit_request(group=True, sample_weight=True)`` (or
      ``group="groups"`` to share ``GroupKFold``'s ``groups``) so ``Pipeline``
      and ``GridSearchCV`` route them to :meth:`fit`. Note that
      ``set_fit_request(group=True)`` routes a fit parameter named ``group``:
      ``search.fit(X, y, groups=g)`` then reaches the splitter only, and the
      estimator warns (:class:`NoGroupWarning`).
    * Saved models: :meth:`save_model` writes the boosters in their native
      formats (XGBoost UBJSON, LightGBM text) plus ``meta.json`` (parameters and
      fitted metadata) to a directory, or to a zip archive if the path ends
      in ``.zip``; :meth:`load_model` reads either.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser import CTCVRClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3))
    >>> click = rng.random(400) < 1 / (1 + np.exp(-X[:, 0]))
    >>> conversion = click & (rng.random(400) < 1 / (1 + np.exp(-X[:, 1])))
    >>> y = np.c_[click, conversion].astype(int)           # or funnel labels click + conversion
    >>> group = np.repeat(np.arange(40), 10)               # e.g. request ids
    >>> model = CTCVRClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(X, y, group=group)
    >>> proba = model.predict_proba(X)
    >>> proba.shape, bool(np.allclose(proba[:, 1], model.predict_ctcvr(X)))
    ((400, 2), True)
    >>> bool(0.5 < model.score(X, y) <= 1.0)               # CTCVR AUC
    True
    """

    _parameter_constraints: dict = {
        "backend": [StrOptions(set(BACKENDS))],
        "structure": [StrOptions({"chain", "shared"})],
        "ctcvr_weight_ctr": [Interval(Real, 0, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "margin_click_only": [Interval(Real, 0, None, closed="left")],
        "margin_no_click": [Interval(Real, 0, None, closed="left")],
        "pair_loss": [StrOptions(set(PAIR_LOSSES))],
        "pairs": [StrOptions({"all"}), Interval(Integral, 1, None, closed="left")],
        "cvr_space": [StrOptions({"clicked", "entire"})],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "ctr_params": [dict, None],
        "cvr_params": [dict, None],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left"), None],
        "ctr_stopping_metric": [StrOptions(set(_CTR_METRICS))],
        "device": [str],  # "cpu", "cuda" or "cuda:<ordinal>": checked by check_device
        "n_jobs": [Interval(Integral, 1, None, closed="left"), Interval(Integral, None, -1, closed="right"),
                   None],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["boolean"],
    }

    def __init__(
        self,
        backend: str = "xgboost",
        lam: float = DEFAULT_LAM,
        margin_click_only: float = DEFAULT_MARGIN_CLICK_ONLY,
        margin_no_click: float = DEFAULT_MARGIN_NO_CLICK,
        pair_loss: str = "squared_hinge",
        pairs: str | int = "all",
        cvr_space: str = "clicked",
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_depth: int | None = 6,
        ctr_params: dict[str, Any] | None = None,
        cvr_params: dict[str, Any] | None = None,
        early_stopping_rounds: int | None = None,
        ctr_stopping_metric: str = "auc_click",
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: int | None = None,
        verbose: bool = False,
        structure: str = "chain",
        ctcvr_weight_ctr: float = 1.0,
    ) -> None:
        self.backend = backend
        self.structure = structure
        self.ctcvr_weight_ctr = ctcvr_weight_ctr
        self.lam = lam
        self.margin_click_only = margin_click_only
        self.margin_no_click = margin_no_click
        self.pair_loss = pair_loss
        self.pairs = pairs
        self.cvr_space = cvr_space
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.ctr_params = ctr_params
        self.cvr_params = cvr_params
        self.early_stopping_rounds = early_stopping_rounds
        self.ctr_stopping_metric = ctr_stopping_metric
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, group: npt.ArrayLike | str | None = None,
            sample_weight: npt.ArrayLike | None = None,
            eval_set: Sequence[tuple[Any, ...]] | None = None) -> CTCVRClassifier:
        """Fit the CTR booster, then the CVR booster.

        Parameters
        ----------
        X : array-like, scipy.sparse CSR matrix, pandas.DataFrame of shape (n, d), or ParquetLog
            Features; NaN is missing. DataFrame ``category`` columns use the
            backends' native categorical splits. A
            :class:`~gbdt_pwiser.ParquetLog` (a folder of Parquet shards) trains
            out of core: ``backend="xgboost"``, ``structure="chain"``,
            ``device="cpu"``; labels, groups and weights then come from its
            columns (leave ``y``, ``group`` and ``sample_weight`` unset) and only
            they are held in memory. ``eval_set`` stays in memory.
        y : array-like of shape (n,) or (n, 2)
            Funnel labels in {0, 1, 2} (click + conversion) or [click, conversion].
            Required unless ``X`` is a ``ParquetLog``.
        group : array-like of shape (n,), "all" or None, default=None
            Group id per row (request, session, user…), any type and order;
            PWiseR pairs are formed within groups. ``"all"``: all rows form one
            group, on purpose. ``None``: also one group, but with ``lam > 0``
            a :class:`NoGroupWarning` says that no group reached ``fit`` (with
            metadata routing, ``set_fit_request(group="groups")`` passes the
            splitter's ``groups``, e.g. ``GroupKFold``'s, as ``group``).
        sample_weight : array-like of shape (n,), optional
            Non-negative row weights (a pair weighs ``w_i·w_j``).
        eval_set : list of (X, y) or (X, y, group), optional
            Validation data, scored every round; with ``early_stopping_rounds``
            the last one decides when to stop.

        Returns
        -------
        self : CTCVRClassifier

        Examples
        --------
        >>> import numpy as np
        >>> from gbdt_pwiser import CTCVRClassifier
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 3))
        >>> y = rng.choice([0, 1, 2], size=200, p=[0.7, 0.2, 0.1])
        >>> model = CTCVRClassifier(n_estimators=3, n_jobs=1)
        >>> model = model.fit(X, y, group=np.repeat(np.arange(20), 10))   # pairs within each request
        >>> model = model.fit(X, y, group="all")                          # one group, on purpose
        """
        check_shared(self)
        check_native_params(self.ctr_params, self.cvr_params, self.device, self._backend())
        if isinstance(X, ParquetLog):
            from ._outofcore import fit_log

            return fit_log(self, X, y, group, sample_weight, eval_set)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        seed, nthread = check_random_state(self.random_state), self._nthread()
        backend = self._backend()
        Xc = check_X(self, X, reset=True)
        n = n_rows(Xc)
        yf = as_funnel(y)
        one_group = isinstance(group, str)
        if one_group and group != "all":
            raise ValueError(f'group must be per-row group ids, "all" or None, got {group!r}')
        group = None if group is None or one_group else np.asarray(group)
        sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        check_lengths(n, y=yf, group=group, sample_weight=sample_weight)
        w = check_sample_weight(sample_weight, n)
        codes = None if group is None else group_codes(group, n, "group")
        w_click, has_conv, evals = self._check_fit_data(yf, w, eval_set)
        if codes is None and not one_group and self.lam > 0:
            warn_no_group(self.lam)

        # Stable sort by group: the objective takes contiguous groups (sizes); predictions do not
        # depend on row order.
        if codes is not None and codes.size > 1 and np.any(codes[1:] < codes[:-1]):
            order = np.argsort(codes, kind="stable")
            Xc, yf, codes = take(Xc, order), yf[order], codes[order]
            w = None if w is None else w[order]

        clear_fitted(self)
        self.classes_ = np.array([0, 1])
        sizes = None if codes is None else np.bincount(codes)
        if self.structure == "shared":
            fit_shared(self, Xc, yf, w, sizes, evals, seed, nthread, has_conv)
            return self
        return self._fit_chain(InMemoryRows(self, Xc), yf, w, sizes, evals, seed, nthread, has_conv, w_click)

    def _check_fit_data(self, yf: np.ndarray, w: np.ndarray | None,
                        eval_set: Any) -> tuple[float, bool, list[tuple[Any, np.ndarray, np.ndarray | None]]]:
        """Clicks and conversions of the training labels, the eval sets and what early stopping needs."""
        clicked = yf >= 1
        w_click = float(np.count_nonzero(clicked) if w is None else w[clicked].sum())  # weighted clicks
        if w_click == 0:
            raise ValueError(
                f"y has only one class: no clicks{'' if w is None else ' among rows of positive weight'}; "
                "the CTR model needs clicked rows (funnel labels: 0 no click, 1 click only, 2 conversion)"
            )
        evals = check_eval_set(self, eval_set)
        conv = yf == 2
        has_conv = bool(np.any(conv) if w is None else w[conv].sum() > 0)
        if self.early_stopping_rounds is not None:
            if not evals:
                raise ValueError("early_stopping_rounds needs an eval_set")
            if self.structure == "shared":
                check_monitored(evals[-1][1], "cvr", self.ctr_stopping_metric, "entire")
            for which in () if self.structure == "shared" else ("ctr", "cvr") if has_conv else ("ctr",):
                check_monitored(evals[-1][1], which, self.ctr_stopping_metric, self.cvr_space)
        return w_click, has_conv, evals

    def _fit_chain(self, rows: Any, yf: np.ndarray, w: np.ndarray | None, sizes: np.ndarray | None,
                   evals: list[Any], seed: int, nthread: int | None, has_conv: bool, w_click: float) -> Any:
        """The CTR booster, then the CVR booster, on ``rows`` (:class:`InMemoryRows` or out of core).

        ``yf``, ``w`` and ``sizes`` are the labels, weights and group sizes of
        the rows in ``rows``' order (groups contiguous).
        """
        self._start_fit("chain")
        backend = self._fitted_backend()
        clicked, conv = yf >= 1, yf == 2
        es = self.early_stopping_rounds
        base = backend.params(learning_rate=self.learning_rate, max_depth=self.max_depth, seed=seed,
                              nthread=nthread, device=self.device)
        # n_jobs=None: the objectives' kernels run on one thread inside the boosting loop,
        # leaving the cores to the booster (see PWiseRObjective's n_jobs).
        obj_kw = {"device": self.device, "n_jobs": None}

        # ---- CTR booster: BCE + λ·PWiseR on all rows
        ctr_obj = PWiseRObjective(lam=self.lam, margin_click_only=self.margin_click_only,
                                  margin_no_click=self.margin_no_click, pair_loss=self.pair_loss,
                                  pairs=self.pairs, random_state=seed, **obj_kw)
        m0 = initial_margin(yf, w)
        ctr_evals = [EvalData(Xe, ye, m0, self._ctr_metric(ye, ge)) for Xe, ye, ge in evals]
        ctr_params = {**base, **(self.ctr_params or {})}
        with self._round_bar("CTR booster") as bar:
            ctr = backend.train(ctr_params, self.n_estimators,
                                TrainData(rows.all(ctr_params), yf.astype(np.float32), w), ctr_evals,
                                grad_fn(ctr_obj, yf, w, sizes), m0, self.ctr_stopping_metric, es,
                                tick=None if bar is None else bar.update)
        store_fit(self, "ctr", ctr)
        history = {"ctr": ctr.history}

        # ---- CVR booster
        if not has_conv:
            store_fit(self, "cvr", None, w_click=w_click)
        else:
            cvr_params = {**base, **(self.cvr_params or {})}
            if self.cvr_space == "clicked":
                idx = np.flatnonzero(clicked)
                data = TrainData(rows.clicked(idx, cvr_params), conv[idx].astype(np.float32),
                                 None if w is None else w[idx])
                cvr_grad, u0 = None, 0.0
                cvr_evals = []
                for Xe, ye, _ in evals:
                    ie = np.flatnonzero(ye >= 1)
                    cvr_evals.append(EvalData(take(Xe, ie), (ye[ie] == 2).astype(np.float32), 0.0,
                                              _margin_metric(M.clicked_conversion_auc, ye[ie])))
            else:
                pctr = expit(rows.ctr_margin())
                data = TrainData(rows.all(cvr_params), yf.astype(np.float32), w)
                cvr_grad = grad_fn(EntireSpaceCVRObjective(ctr_prob=pctr, **obj_kw), yf, w, None)
                # start u at the log-odds of the conversion rate among clicks
                u0 = initial_margin(conv[clicked].astype(np.int8), None if w is None else w[clicked])
                cvr_evals = [EvalData(Xe, ye, u0, _ctcvr_metric(ye, expit(self._ctr_margin(Xe))))
                             for Xe, ye, _ in evals]
            with self._round_bar("CVR booster") as bar:
                cvr = backend.train(cvr_params, self.n_estimators, data, cvr_evals,
                                    cvr_grad, u0, "auc_conv" if self.cvr_space == "clicked" else "auc_ctcvr",
                                    es, tick=None if bar is None else bar.update)
            store_fit(self, "cvr", cvr)
            history["cvr"] = cvr.history
        self.evals_result_ = history if evals else {}
        return self

    def _ctr_metric(self, ye: np.ndarray, ge: np.ndarray | None) -> Callable[[np.ndarray], float]:
        fn, needs_group = M.METRICS[self.ctr_stopping_metric]
        if needs_group:
            g = np.zeros(ye.size, dtype=np.int64) if ge is None else ge
            return lambda z: fn(z, ye, g)
        return _margin_metric(fn, ye)


def store_fit(est: Any, which: str, result: FitResult | None, w_click: float | None = None) -> None:
    """Record one booster's :class:`FitResult` on ``est`` (``ctr_booster_``, ``n_rounds_ctr_``...).

    ``which="cvr"`` with ``result=None``: no conversion in the training data;
    pCVR becomes the constant ``0.5 / (w_click + 1)`` (``cvr_fallback_rate_``),
    with a warning. Shared by every estimator of the chain (local and Dask).
    """
    setattr(est, f"{which}_booster_", None if result is None else result.booster)
    setattr(est, f"{which}_init_margin_", 0.0 if result is None else result.offset)
    setattr(est, f"n_rounds_{which}_", 0 if result is None else result.n_rounds)
    setattr(est, f"best_iteration_{which}_", None if result is None else result.best_iteration)
    if which == "cvr":
        est.cvr_fallback_rate_ = None
        if result is None and w_click is not None:
            est.cvr_fallback_rate_ = 0.5 / (w_click + 1)
            warnings.warn(
                f"y has no conversions: the CVR booster is not trained and pCVR is the constant "
                f"{est.cvr_fallback_rate_:.3g} (0.5 / (clicks + 1))", UserWarning, stacklevel=4,
            )


def _margin_metric(fn: Callable[..., float], y: np.ndarray) -> Callable[[np.ndarray], float]:
    """``margin -> fn(margin, y)``: an AUC of the raw margin (rank-based, so margin = probability)."""
    return lambda z: fn(z, y)


def _ctcvr_metric(y: np.ndarray, pctr: np.ndarray) -> Callable[[np.ndarray], float]:
    """CTCVR AUC of pCTR·σ(u) over all rows: the early-stopping metric of the entire-space booster."""
    return lambda u: M.conversion_auc(pctr * expit(u), y)
