"""In-process engines: the rows in memory (:class:`MemoryEngine`), or in Parquet shards (the external engine).

Both train every booster with the booster library's own ``train`` in this
process, the objective a closure over the rows' labels, weights and groups
(:class:`~gbdt_pwiser.engines.RoundGradients`). They differ only in where the
features come from — a *rows* object answering three requests in the rows'
order (groups contiguous):

``select(which, params, weight)``
    The features of every row (``"all"``) or of the clicked rows
    (``"clicked"``), as the booster library takes them (an array, a CSR
    matrix, a DataFrame, or an ``xgboost.DMatrix`` built by the rows object;
    ``params`` are the booster's native parameters, e.g. for ``max_bin``;
    ``weight`` the booster's weight of every row, which a matrix built by the
    rows object carries).
``margin(fit)``
    The raw margin of a fitted booster on every training row (what the
    entire-space objective needs from the CTR booster).
``close()``
    Release what the rows hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from .. import metrics as M
from .._labels import as_funnel
from .._validation import group_codes
from ..calibration import Outcomes
from ..datasets.sources import group_runs
from ..objectives import PWiseRObjective, initial_margin
from ._base import Engine, FitResult, LabelSums, RoundGradients, Task, TrainingData, conversion_weights
from ._inputs import check_eval_set, check_lengths, check_sample_weight, check_X, n_rows, take, warn_no_group
from .boosters import EvalData, TrainData

__all__ = ["LocalData", "MemoryEngine", "MemoryRows", "label_sums"]


def label_sums(y: np.ndarray, w: np.ndarray | None) -> LabelSums:
    """The global label counts of funnel labels ``y`` with weights ``w``, and the starting margins.

    The margins are computed by :func:`~gbdt_pwiser.initial_margin` itself, so
    an in-process fit starts exactly where a user's ``xgb.train`` would.
    """
    clicked, conv = y >= 1, y == 2
    total = float(y.size if w is None else w.sum())
    w_click = float(np.count_nonzero(clicked) if w is None else w[clicked].sum())
    w_conv = float(np.count_nonzero(conv) if w is None else w[conv].sum())
    cvr = initial_margin(conv[clicked].astype(np.int8), None if w is None else w[clicked]) if w_click > 0 else 0.0
    return LabelSums(
        rows=int(y.size),
        total=total,
        clicks=w_click,
        conversions=w_conv,
        ctr_margin=initial_margin(y, w) if total > 0 else 0.0,
        cvr_margin=cvr,
    )


@dataclass
class LocalData(TrainingData):
    """Training data of an in-process engine: the rows, and the per-row state the objectives need.

    ``y`` funnel labels (int8), ``weight`` float64 or None, ``ptr`` the group
    boundaries (rows are contiguous by group; None: one group, unless
    ``codes`` gives each row's group, wherever the rows are), ``nthread`` the
    threads prediction uses.
    """

    rows: Any
    y: np.ndarray
    weight: np.ndarray | None
    ptr: np.ndarray | None
    sums: LabelSums
    nthread: int | None
    meta: Any = None  # an empty DataFrame of the training columns (their dtypes), or None
    ids: np.ndarray | None = None  # the group id of each row (what calibration folds hash), if known
    codes: np.ndarray | None = None  # per-row group codes when the groups are not contiguous (then ptr is None)

    def labels(self, which: str, conversion_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Labels and weights of the rows ``which``: funnel labels for all rows, 0/1 conversions for clicked ones.

        The weights are those of a booster with ``conversion_weight`` α
        (:func:`~gbdt_pwiser.engines.conversion_weights`). Also returns the
        funnel labels of those rows.
        """
        w = conversion_weights(self.y, self.weight, conversion_weight)
        if which == "all":
            return self.y.astype(np.float32), w, self.y
        idx = np.flatnonzero(self.y >= 1)
        y = self.y[idx]
        return (y == 2).astype(np.float32), None if w is None else w[idx], y


class _ExactStart:
    """A gradient function whose margins start at the continued booster's exact margins.

    XGBoost predicts a continued booster on a quantised matrix (external
    memory) from bins, not raw values: where the booster's split values fall
    between the matrix's cuts, a row's starting margin is off (measured: 9 %
    of the rows, up to 0.33 in log-odds, on a new day's data). The new trees
    are exact on their own matrix, so the offset is constant per row: it is
    measured at the first call and added back every round.
    """

    def __init__(self, grad: Any, exact: np.ndarray) -> None:
        self.grad, self.exact = grad, np.asarray(exact, dtype=np.float64)
        self.delta: np.ndarray | None = None

    def __call__(self, margin: Any) -> Any:
        m = np.asarray(margin, dtype=np.float64)
        if self.delta is None:
            self.delta = self.exact.reshape(m.shape) - m
        return self.grad(m + self.delta)


class MemoryRows:
    """Training rows held in memory (array, CSR matrix or DataFrame), sorted by group."""

    def __init__(self, X: Any, y: np.ndarray, engine: LocalEngine, nthread: int | None) -> None:
        self.X, self.y, self.engine, self.nthread = X, y, engine, nthread

    def select(self, which: str, params: dict[str, Any], weight: np.ndarray | None = None) -> Any:
        return self.X if which == "all" else take(self.X, np.flatnonzero(self.y >= 1))

    def margin(self, fit: FitResult) -> np.ndarray:
        return self.engine.predict_margin(fit, self.X, self.nthread)

    def subset(self, mask: np.ndarray) -> MemoryRows:
        idx = np.flatnonzero(mask)
        return MemoryRows(take(self.X, idx), self.y[idx], self.engine, self.nthread)

    def predictions(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(pCTR, pCVR)`` of a fitted (uncalibrated) model on every row."""
        return model._predict_all(self.X)

    def close(self) -> None:
        self.X = None


class LocalEngine(Engine):
    """Train in this process with the booster library's ``train`` (see the module docstring)."""

    def prepare_evals(self, est: Any, eval_set: Any) -> list[Any]:
        return check_eval_set(est, eval_set)

    def eval_labels(self, evals: list[Any]) -> list[np.ndarray]:
        return [ye for _, ye, _ in evals]

    def _objective(self, data: LocalData, task: Task, y: np.ndarray, w: np.ndarray | None) -> Any:
        """The task's objective bound to its rows (None: the native log-loss)."""
        obj = task.objective
        exact_start = task.init is not None and getattr(data.rows, "quantised", False)
        if obj is None:
            if not exact_start:
                return None
            # the native log-loss as a custom objective (BCE on the 0/1 labels), so its start can be corrected
            obj, y = PWiseRObjective(lam=0.0, n_jobs=None), (y == 2).astype(np.int8)
        if task.ctr is not None:  # entire space: pCTR of every training row from the CTR booster
            obj = type(obj)(**{**obj._get_params(), "ctr_prob": expit(data.rows.margin(task.ctr))})
            grad = RoundGradients(
                obj, y, w, first_round=task.first_round, booster=self.library.name, threads=data.nthread
            )
        else:
            rows = task.rows != "clicked"
            grad = RoundGradients(
                obj,
                y,
                w,
                ptr=data.ptr if rows else None,
                codes=data.codes if rows else None,
                first_round=task.first_round,
                booster=self.library.name,
                threads=data.nthread,
            )
        if exact_start:
            exact = data.rows.margin(task.init)
            return _ExactStart(grad, exact if task.rows == "all" else exact[data.y >= 1])
        return grad

    def _evals(self, data: LocalData, task: Task, evals: list[Any]) -> list[EvalData]:
        out = []
        for Xe, ye, ge in evals:
            if task.rows == "clicked":
                ie = np.flatnonzero(ye >= 1)
                Xe, ye, ge = take(Xe, ie), ye[ie], None if ge is None else ge[ie]
            pctr = None if task.ctr is None else expit(self.predict_margin(task.ctr, Xe, data.nthread))
            metric = M.margin_metric(task.metric, ye, group=ge, ctr_prob=pctr)
            label = (ye == 2).astype(np.float32) if task.rows == "clicked" else ye
            init = 0.0 if task.objective is None else task.init_margin
            out.append(EvalData(Xe if task.transform is None else task.transform(Xe), label, init, metric))
        return out

    def subset(self, data: TrainingData, keep: Any) -> LocalData:
        """The rows whose group ``keep(ids)`` marks (whole groups), as training data of their own."""
        assert isinstance(data, LocalData)
        if data.ids is None:
            raise ValueError("this training data holds no group ids to split by")
        mask = np.asarray(keep(data.ids), dtype=bool)
        y, w, ids = data.y[mask], None if data.weight is None else data.weight[mask], data.ids[mask]
        ptr = None if data.ptr is None else group_runs(ids, "the training rows")[0]
        codes = None if data.codes is None else data.codes[mask]
        return LocalData(data.rows.subset(mask), y, w, ptr, label_sums(y, w), data.nthread, data.meta, ids, codes)

    def outcomes(self, data: TrainingData, model: Any) -> tuple[Outcomes, Outcomes]:
        """Binned outcomes of a model's pCTR (clicks) and pCTCVR (conversions) on the rows of ``data``."""
        assert isinstance(data, LocalData)
        pctr, pcvr = data.rows.predictions(model)
        return Outcomes.of(pctr, data.y >= 1, data.weight), Outcomes.of(pctr * pcvr, data.y == 2, data.weight)

    def sums(self, data: TrainingData, conversion_weight: float = 0.0) -> LabelSums:
        assert isinstance(data, LocalData)
        if conversion_weight == 0:
            return data.sums
        return label_sums(data.y, conversion_weights(data.y, data.weight, conversion_weight))

    def train(self, data: TrainingData, task: Task, evals: list[Any]) -> FitResult:
        assert isinstance(data, LocalData)
        label, weight, y = data.labels(task.rows, task.conversion_weight)
        X = data.rows.select(task.rows, task.params, conversion_weights(data.y, data.weight, task.conversion_weight))
        if task.transform is not None:
            X = task.transform(X)
        grad = self._objective(data, task, y, weight)
        return self.library.train(
            task.params,
            task.n_rounds,
            TrainData(X, label, weight),
            self._evals(data, task, evals),
            grad,
            task.init_margin if grad is not None else 0.0,
            task.metric,
            task.early_stopping_rounds,
            tick=task.tick,
            init=task.init,
        )

    def close(self, data: TrainingData) -> None:
        assert isinstance(data, LocalData)
        data.rows.close()


class MemoryEngine(LocalEngine):
    """Rows in memory: arrays, scipy CSR matrices or pandas DataFrames (category columns kept)."""

    kind = "memory"

    def prepare(self, est: Any, X: Any, y: Any, group: Any, sample_weight: Any) -> LocalData:
        if y is None:
            raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
        Xc = check_X(est, X, reset=True)
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
        if codes is None and not one_group and est.lam > 0:
            warn_no_group(est.lam)
        ids = np.arange(n) if group is None else group  # without groups, each row is its own for calibration
        # Stable sort by group: the objective takes contiguous groups; predictions do not depend on row order.
        if codes is not None and codes.size > 1 and np.any(codes[1:] < codes[:-1]):
            order = np.argsort(codes, kind="stable")
            Xc, yf, codes, ids = take(Xc, order), yf[order], codes[order], ids[order]
            w = None if w is None else w[order]
        ptr = None
        if codes is not None:
            ptr = np.concatenate([[0], np.cumsum(np.bincount(codes))]).astype(np.int64)
        nthread = est._nthread()
        meta = Xc.iloc[:0] if isinstance(Xc, pd.DataFrame) else None
        return LocalData(MemoryRows(Xc, yf, self, nthread), yf, w, ptr, label_sums(yf, w), nthread, meta, ids)
