"""The engine interface: what a fit driver asks of a training engine, and what it gets back.

A fit driver (:mod:`gbdt_pwiser.sklearn._drivers`) decides *what* to train — a
CTR booster with BCE + λ·PWiseR, a CVR booster on the clicked rows or on all
rows with the entire-space loss, or one shared two-output booster — as a list
of :class:`Task` objects. An engine decides *how*: where the rows live (memory,
Parquet shards read by XGBoost's external memory, Dask partitions), how the
objective reaches them (a closure in this process, or a pickled objective with
global normalisers on every worker), how eval sets are scored and how a worker
loss is reported. The driver holds no engine- or booster-specific branch.

The interface
-------------
``prepare(est, X, y, group, sample_weight) -> TrainingData``
    Validate the training data, record the feature layout on ``est``
    (``n_features_in_``, ``feature_names_in_``) and return the engine's handle
    on it. Its :class:`LabelSums` carry the global weighted counts the driver
    needs (starting margins, "no clicks", "no conversions").
``prepare_evals(est, eval_set) -> list``
    The eval sets in the engine's own form (validated against the fitted layout).
``eval_labels(evals) -> list of ndarray``
    The funnel labels of each eval set (the driver checks that the watched one
    has both classes before any training).
``sums(data, conversion_weight) -> LabelSums``
    The label counts under the CTR booster's weights (``1 + α`` on conversions).
``train(data, task, evals) -> FitResult``
    Train one booster; ``evals`` from ``prepare_evals`` are scored every
    round with ``task.metric`` (the last one decides early stopping).
``predict_margin(fit, X) -> ndarray``
    The raw margin of a fitted booster on rows in memory (offset included).
``subset(data, keep) -> TrainingData``
    The rows whose group ids ``keep(ids)`` marks (whole groups), as training
    data of their own (calibration's auxiliary fits).
``outcomes(data, model) -> (Outcomes, Outcomes)``
    A fitted model's pCTR against clicks and pCTCVR against conversions on
    the rows of ``data``, reduced to binned sums
    (:class:`gbdt_pwiser.calibration.Outcomes`) where the rows are.

:class:`Task` names the rows (``"all"`` or ``"clicked"``), the objective (a
:class:`~gbdt_pwiser.PWiseRObjective`, an
:class:`~gbdt_pwiser.EntireSpaceCVRObjective` whose pCTR the engine supplies
from ``task.ctr``, a :class:`~gbdt_pwiser.objectives.SharedCTCVRObjective`, or
``None`` for the booster's native log-loss on 0/1 conversion labels), the
starting margin, the native parameters and the early-stopping metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Engine",
    "FitResult",
    "LabelSums",
    "RoundGradients",
    "Stopper",
    "Task",
    "TrainingData",
    "conversion_weights",
    "log_odds",
]

#: Rates are clipped to [RATE_FLOOR, 1 - RATE_FLOOR] before taking log-odds (as initial_margin does).
RATE_FLOOR = 1e-6


def log_odds(positive: float, total: float) -> float:
    """``log(r / (1 - r))`` of the rate ``r = positive / total``, clipped to ``[1e-6, 1 - 1e-6]``.

    The starting margin of a booster trained with a custom objective (which
    has no intercept of its own). ``total == 0`` gives the log-odds of 1e-6.

    Examples
    --------
    >>> from gbdt_pwiser.engines import log_odds
    >>> round(log_odds(1.0, 4.0), 4)
    -1.0986
    """
    rate = positive / total if total > 0 else 0.0
    rate = min(max(rate, RATE_FLOOR), 1.0 - RATE_FLOOR)
    return float(np.log(rate / (1.0 - rate)))


def conversion_weights(y: Any, weight: Any, alpha: float) -> Any:
    """The weights of a booster that weighs conversions ``1 + α`` times: ``w · (1 + α·[y = 2])``.

    ``y`` funnel labels and ``weight`` (None: all 1) are numpy arrays or dask
    Series alike; α = 0 returns ``weight`` itself. The one definition every
    engine uses.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.engines import conversion_weights
    >>> conversion_weights(np.array([0, 1, 2]), None, 1.0).tolist()
    [1.0, 1.0, 2.0]
    """
    if alpha == 0:
        return weight
    factor = 1.0 + float(alpha) * (y == 2)
    return factor if weight is None else weight * factor


@dataclass(frozen=True)
class LabelSums:
    """Global weighted counts of the training labels (a row weighs its ``sample_weight``, else 1).

    ``ctr_margin`` and ``cvr_margin`` are the starting margins of the CTR
    booster (log-odds of the click rate) and of the entire-space CVR booster
    (log-odds of the conversion rate among clicks).
    """

    rows: int
    total: float
    clicks: float
    conversions: float
    ctr_margin: float
    cvr_margin: float

    @property
    def has_conversions(self) -> bool:
        return self.conversions > 0


@dataclass
class FitResult:
    """One trained booster, as an engine returns it."""

    booster: Any
    offset: float | np.ndarray  # added to the booster's raw prediction (LightGBM's init_score)
    n_rounds: int  # boosting rounds used for prediction
    best_iteration: int | None  # 0-based best round with early stopping, else None
    history: dict[str, dict[str, list[float]]]  # {"valid_k": {metric_name: [score per round]}}


@dataclass
class Task:
    """One booster to train (see the module docstring).

    ``rows``: ``"all"`` (funnel labels) or ``"clicked"`` (the clicked rows,
    labels 0/1 = converted, native log-loss when ``objective`` is None).
    ``objective``: the custom objective or None. ``ctr``: for the entire-space
    objective, the fitted CTR booster whose pCTR the loss uses.
    ``init_margin``: the starting margin (a float, or a 2-vector for the shared
    booster); ignored with ``objective=None`` (the booster fits its own intercept).
    ``metric``: the early-stopping metric's name (see
    :func:`gbdt_pwiser.metrics.margin_metric`). ``transform``: a feature
    transform applied to the training and eval rows (the shared booster's
    category codes). The number of margins per row is the engine's
    library's (``library.n_outputs``: 2 for the shared booster).
    ``conversion_weight``: α ≥ 0; the rows' weights are multiplied by ``1 + α``
    on conversions (the conversion-weighted CTR booster). ``init``: a fitted
    booster to continue from (its first ``n_rounds`` rounds; ``offset`` is its
    starting margin): training adds ``n_rounds`` rounds to it, starting from
    its margins, and the round counter carries on from its rounds.
    """

    name: str
    rows: str
    objective: Any
    init_margin: Any
    params: dict[str, Any]
    n_rounds: int
    metric: str
    early_stopping_rounds: int | None = None
    ctr: FitResult | None = None
    transform: Callable[[Any], Any] | None = None
    tick: Callable[[int], Any] | None = None
    conversion_weight: float = 0.0
    init: FitResult | None = None

    @property
    def first_round(self) -> int:
        """The round the training starts counting from (the rounds of ``init``)."""
        return 0 if self.init is None else int(self.init.n_rounds)


class TrainingData:
    """An engine's handle on validated training data.

    ``sums`` are its global label counts; ``meta`` an empty DataFrame with the
    training columns' dtypes (their categories), or None for arrays.
    """

    sums: LabelSums
    meta: Any


class Stopper:
    """Early stopping on a higher-is-better score; the same rule for every engine.

    Examples
    --------
    >>> from gbdt_pwiser.engines import Stopper
    >>> s = Stopper(rounds=2)
    >>> [s.update(i, score) for i, score in enumerate([0.6, 0.7, 0.69, 0.68])]
    [False, False, False, True]
    >>> s.best_iteration
    1
    """

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.best_score = -np.inf
        self.best_iteration = 0

    def update(self, iteration: int, score: float) -> bool:
        """Record round ``iteration``'s score; True when training should stop."""
        if score > self.best_score:
            self.best_score = score
            self.best_iteration = iteration
            return False
        return iteration - self.best_iteration >= self.rounds


@dataclass
class RoundGradients:
    """``margin -> (grad, hess)``: an objective bound to one booster's training rows.

    The rows' labels, weights and groups are prepared once (first call);
    every call is the next boosting round, counted from ``first_round``, which
    is what seeds the sampled pairs (a continued fit carries on the count). The
    groups are either contiguous (``ptr``, group boundaries) or per-row codes
    (``codes``, any order).
    """

    objective: Any
    y: np.ndarray
    weight: np.ndarray | None
    ptr: np.ndarray | None = None
    codes: np.ndarray | None = None
    first_round: int = 0
    #: the booster library whose update calls this (``"xgboost"``, ``"lightgbm"``): the kernels run
    #: on its OpenMP team (see :mod:`gbdt_pwiser._threads`); None: on the objectives' pool
    booster: str | None = None
    #: the threads the booster trains on (None: every core), which the objective takes unless its
    #: ``n_jobs`` says otherwise
    threads: int | None = None
    calls: int = field(default=0, init=False)

    def _make(self) -> Any:
        if self.codes is not None:
            return self.objective._prepare_call(self.y, self.codes, self.weight)
        ptr = self.ptr if self.ptr is not None else np.array([0, self.y.size], dtype=np.int64)
        return self.objective._prepare(self.y, self.weight, ptr)

    def __call__(self, margin: Any) -> tuple[Any, Any]:
        it = self.first_round + self.calls
        out = self.objective._adapt(
            margin, self.calls > 0, self._make, iteration=it, booster=self.booster, threads=self.threads
        )
        self.calls += 1
        return out


class Engine:
    """The interface of a training engine (see the module docstring)."""

    #: ``"memory"``, ``"external"`` or ``"dask"``: the key of :mod:`gbdt_pwiser.engines.limits`
    kind = ""

    def __init__(self, library: Any) -> None:
        self.library = library  # a booster library of gbdt_pwiser.engines.boosters

    def prepare(self, est: Any, X: Any, y: Any, group: Any, sample_weight: Any) -> TrainingData:
        raise NotImplementedError

    def prepare_evals(self, est: Any, eval_set: Any) -> list[Any]:
        raise NotImplementedError

    def eval_labels(self, evals: list[Any]) -> list[np.ndarray]:
        raise NotImplementedError

    def train(self, data: TrainingData, task: Task, evals: list[Any]) -> FitResult:
        raise NotImplementedError

    def sums(self, data: TrainingData, conversion_weight: float = 0.0) -> LabelSums:
        """The label counts under the weights of a booster with ``conversion_weight`` α (``data.sums`` for 0)."""
        raise NotImplementedError

    def subset(self, data: TrainingData, keep: Callable[[np.ndarray], np.ndarray]) -> TrainingData:
        raise NotImplementedError

    def outcomes(self, data: TrainingData, model: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def close(self, data: TrainingData) -> None:
        """Release what ``prepare`` holds (external-memory pages, persisted partitions)."""

    def predict_margin(self, fit: FitResult, X: Any, nthread: int | None = None) -> np.ndarray:
        """Raw margin of ``fit``'s booster on in-memory rows ``X``, offset included."""
        return self.library.predict_margin(fit.booster, X, fit.n_rounds, nthread) + fit.offset
