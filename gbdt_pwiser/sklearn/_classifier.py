"""``CTCVRClassifier``: the chained CTR → CVR gradient-boosted estimator (docs/mathematics.md §5, §7).

The estimator is glue and contains no loss mathematics: the CTR booster is
trained with :class:`~gbdt_pwiser.objectives.PWiseRObjective`, the entire-space
CVR booster with :class:`~gbdt_pwiser.objectives.EntireSpaceCVRObjective`, the
clicked-space CVR booster with the library's native log-loss, and evaluation
uses :mod:`gbdt_pwiser.metrics`. ``fit`` picks the training engine
(:func:`gbdt_pwiser.engines.engine_for`: in memory, or out of core for a
:class:`~gbdt_pwiser.ParquetLog`) and hands it to the one fit driver
(:mod:`._drivers`); prediction and the saved-model format are in :mod:`._base`
and :mod:`._persistence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._validation import PAIR_LOSSES
from ..engines._inputs import NoGroupWarning
from ..engines.boosters import LIBRARIES
from . import _drivers
from ._base import _ChainBase

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
    conversion_weight : float, default=0.0
        α ≥ 0: the CTR booster weighs converted rows ``1 + α`` times (on top of
        ``sample_weight``; with λ > 0 their pairs too), the CVR booster is left
        alone. Conversion-weighted BCE (``lam=0, conversion_weight=α``) is the
        project's measured alternative to PWiseR for ranking conversions by
        pCTR; it inflates pCTR where conversions are likely, so combine it
        with ``calibration`` when predicted rates must match observed ones.
        ``structure="chain"`` only.
    calibration : {"isotonic", "sigmoid"} or None, default=None
        Fit a monotone map per task — of pCTR, and of pCTCVR — on predictions
        of held-out groups of the training data, so that predicted rates match
        observed ones (``predict_*`` then return calibrated values, and
        ``predict_ctcvr`` is still ``predict_ctr · predict_cvr``). See
        :mod:`gbdt_pwiser.calibration`: isotonic maps keep every AUC (no ties
        are added), sigmoid maps are Platt scaling on log-odds.
    calibration_cv : int >= 2 or float in (0, 1), default=3
        How the held-out predictions are made: ``k`` — cross-fitted by group,
        ``k`` auxiliary fits each predicting one fold of groups; a float ``f``
        — one auxiliary fit on the groups outside a held-out share ``f`` of
        them. Folds come from a seeded hash of the group id (``random_state``).
        The auxiliary fits use the rounds the main fit kept (after early
        stopping), so calibration costs ``k`` (or 1) more fits.
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
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
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
      with ``lam > 0`` that draws a :class:`~gbdt_pwiser.NoGroupWarning` (a lost group is the
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
      estimator warns (:class:`~gbdt_pwiser.NoGroupWarning`).
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
    >>> y = np.c_[click, conversion].astype(int)  # or funnel labels click + conversion
    >>> group = np.repeat(np.arange(40), 10)  # e.g. request ids
    >>> model = CTCVRClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(X, y, group=group)
    >>> proba = model.predict_proba(X)
    >>> proba.shape, bool(np.allclose(proba[:, 1], model.predict_ctcvr(X)))
    ((400, 2), True)
    >>> bool(0.5 < model.score(X, y) <= 1.0)  # CTCVR AUC
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "backend": [StrOptions(set(LIBRARIES))],
        "structure": [StrOptions({"chain", "shared"})],
        "ctcvr_weight_ctr": [Interval(Real, 0, None, closed="left")],
        "conversion_weight": [Interval(Real, 0, None, closed="left")],
        "calibration": [StrOptions({"isotonic", "sigmoid"}), None],
        "calibration_cv": [Interval(Integral, 2, None, closed="left"), Interval(RealNotInt, 0, 1, closed="neither")],
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
        "n_jobs": [Interval(Integral, 1, None, closed="left"), Interval(Integral, None, -1, closed="right"), None],
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
        conversion_weight: float = 0.0,
        calibration: str | None = None,
        calibration_cv: int | float = 3,
    ) -> None:
        self.backend = backend
        self.structure = structure
        self.ctcvr_weight_ctr = ctcvr_weight_ctr
        self.conversion_weight = conversion_weight
        self.calibration = calibration
        self.calibration_cv = calibration_cv
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
    def fit(
        self,
        X: Any,
        y: Any = None,
        group: npt.ArrayLike | str | None = None,
        sample_weight: npt.ArrayLike | None = None,
        eval_set: Sequence[tuple[Any, ...]] | None = None,
        init_model: Any = None,
    ) -> CTCVRClassifier:
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
            a :class:`~gbdt_pwiser.NoGroupWarning` says that no group reached ``fit`` (with
            metadata routing, ``set_fit_request(group="groups")`` passes the
            splitter's ``groups``, e.g. ``GroupKFold``'s, as ``group``).
        sample_weight : array-like of shape (n,), optional
            Non-negative row weights (a pair weighs ``w_i·w_j``).
        eval_set : list of (X, y) or (X, y, group), optional
            Validation data, scored every round; with ``early_stopping_rounds``
            the last one decides when to stop.
        init_model : fitted CTCVRClassifier, str or path-like, optional
            Continue training (the daily retrain): a fitted model, or the path
            of one saved by :meth:`save_model`. Each booster gets
            ``n_estimators`` more rounds, starting from that model's margins
            (its first ``n_rounds_*_`` rounds, as it predicts) and carrying on
            its round counter (which seeds the sampled pairs). It must have
            been fitted with the same features, ``backend``, ``structure`` and
            ``cvr_space``; otherwise a ``ValueError`` says what differs.

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
        >>> model = model.fit(X, y, group=np.repeat(np.arange(20), 10))  # pairs within each request
        >>> model = model.fit(X, y, group="all")  # one group, on purpose
        """
        return _drivers.fit(
            self, X, y, group, sample_weight, eval_set, client=self._fit_client(), init_model=init_model
        )

    def _fit_client(self) -> Any:
        """The Dask client to train on; None trains in this process (memory, or out of core)."""
        return None
