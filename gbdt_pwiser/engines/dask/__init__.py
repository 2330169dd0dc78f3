"""The Dask engine: every booster trained with ``xgboost.dask`` or ``lightgbm.dask``, exact across workers.

``prepare`` assembles the features, funnel labels, group ids and weights into
one dask DataFrame (so dask aligns them, whatever partitions the optimiser
gives each), makes unknown categories known, and computes in one pass
PWiseR's global normalisers with the partition layout checked
(:func:`~.partition.group_statistics`); groups scattered over partitions are
repartitioned (:func:`~.partition.partition_by_group`) on the typed
:class:`~gbdt_pwiser.exceptions.GroupLayoutError`. Each worker then runs the
objective with the global normalisers (:mod:`gbdt_pwiser.objectives.distributed`),
so its gradient equals the single-process one row for row; the entire-space
booster reads pCTR from each row's label.

Modules: ``partition`` (group-whole partitions, global statistics),
``inputs`` (the boosters' Dask inputs), ``evals`` (eval sets, worker loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ...calibration import Outcomes
from ...exceptions import GroupLayoutError
from ...objectives._adapters import _is_dmatrix
from ...objectives.distributed import (
    EntireSpaceLabelObjective,
    GlobalPWiseRObjective,
    GlobalSharedCTCVRObjective,
    entire_space_label,
)
from .._base import Engine, FitResult, LabelSums, Task, TrainingData, conversion_weights, log_odds
from .._inputs import check_X
from .evals import check_eval_set, eval_frames, worker_lost, xgboost_eval_params, xgboost_evals, xgboost_result
from .inputs import lightgbm_fit_kwargs, xgboost_dmatrix
from .partition import (
    G_COL,
    W_COL,
    Y_COL,
    GlobalStats,
    _is_dask,
    group_statistics,
    nonempty_partitions,
    partition_by_group,
    training_frame,
)

__all__ = ["DaskData", "DaskEngine"]

# column names of the assembled training frame (features keep theirs)
Y, G, W, ESL = Y_COL, G_COL, W_COL, "__gbdt_pwiser_esl__"


def _sums(stats: GlobalStats) -> LabelSums:
    return LabelSums(
        rows=stats.n_rows,
        total=stats.total_weight,
        clicks=stats.click_weight,
        conversions=stats.conversion_weight,
        ctr_margin=stats.initial_margin,
        cvr_margin=log_odds(stats.conversion_weight, stats.click_weight),
    )


@dataclass
class DaskData(TrainingData):
    """The assembled training frame on the cluster, its global statistics and the client."""

    client: Any
    frame: Any
    features: list
    stats: GlobalStats
    sums: LabelSums
    weighted: bool
    meta: Any = None  # the features' dask meta (an empty DataFrame with their dtypes)

    def X(self) -> Any:
        return self.frame[self.features]

    def weight(self, conversion_weight: float = 0.0) -> Any:
        """The rows' weights (dask Series) under ``conversion_weight`` α; None when all are 1."""
        return conversion_weights(self.frame[Y], self.frame[W] if self.weighted else None, conversion_weight)

    def stats_for(self, conversion_weight: float) -> GlobalStats:
        """The global statistics under the weights of ``conversion_weight`` (one pass per α, cached)."""
        if conversion_weight == 0:
            return self.stats
        cache = self.__dict__.setdefault("_stats", {})
        if conversion_weight not in cache:
            cache[conversion_weight] = group_statistics(
                self.frame[Y], self.frame[G], self.weight(conversion_weight), check_groups=False
            )
        return cache[conversion_weight]


def _keep_part(part: pd.DataFrame, keep: Any) -> pd.DataFrame:
    return part[np.asarray(keep(part[G].to_numpy()), dtype=bool)]


def _outcomes_part(part: pd.DataFrame, model: Any, features: list, weighted: bool) -> tuple[Outcomes, Outcomes]:
    if len(part) == 0:
        return Outcomes.empty(), Outcomes.empty()
    pctr, pcvr = model._predict_all(part[features])
    y = part[Y].to_numpy()
    w = part[W].to_numpy() if weighted else None
    return Outcomes.of(pctr, y >= 1, w), Outcomes.of(pctr * pcvr, y == 2, w)


class _Continued:
    """An objective continuing a booster on the workers: margins shifted by its offset, rounds counted on.

    LightGBM starts a continued booster from the previous trees' raw score,
    without our starting margin (``shift``); the adapters' round counter starts
    at ``first_round``. Picklable (the objective travels to every worker).
    """

    def __init__(self, objective: Any, shift: float | np.ndarray, first_round: int) -> None:
        # a LightGBM booster has one output: its offset, the only one shifted, is one number
        self.objective, self.shift, self.first_round = objective, float(shift), int(first_round)

    def __call__(self, a: Any, b: Any, sample_weight: Any = None, group: Any = None) -> Any:
        self.objective.round_offset = self.first_round  # not pickled with the objective's parameters
        if _is_dmatrix(b):  # XGBoost: obj(predt, dtrain)
            return self.objective(np.asarray(a) + self.shift, b)
        return self.objective(a, np.asarray(b) + self.shift, sample_weight, group)


def _esl_part(part: pd.DataFrame, library: Any, fit: FitResult, features: list) -> pd.Series:
    """Entire-space labels ``±pCTR`` of one partition, pCTR from the fitted CTR booster."""
    pctr = expit(library.predict_margin(fit.booster, part[features], fit.n_rounds, None) + fit.offset)
    return pd.Series(entire_space_label(part[Y].to_numpy(), pctr), index=part.index, name=ESL)


def _no_threads(params: dict) -> dict:
    """LightGBM's Dask estimators set the threads from each worker's own (they ignore ``num_threads``)."""
    return {k: v for k, v in params.items() if k not in ("num_threads", "n_jobs")}


class DaskEngine(Engine):
    """Train on a Dask cluster (see the module docstring); ``client`` is the ``distributed.Client``."""

    kind = "dask"

    def __init__(self, library: Any, client: Any) -> None:
        super().__init__(library)
        self.client = client

    # ------------------------------------------------------------------ data
    def prepare(self, est: Any, X: Any, y: Any, group: Any, sample_weight: Any) -> DaskData:
        if y is None:
            raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
        if not (_is_dask(X) and hasattr(X, "columns")):
            raise TypeError(
                f"X must be a dask DataFrame, got {type(X).__name__} (use CTCVRClassifier for in-memory data)"
            )
        if isinstance(group, str):
            if group != "all":
                raise ValueError(f'group must be per-row group ids, "all" or None, got {group!r}')
            group = None
        clash = [c for c in X.columns if c in (Y, G, W, ESL)]
        if clash:
            raise ValueError(f"X has reserved column names {clash}")
        frame = training_frame(X, y, group, sample_weight)  # categories made known, one graph
        check_X(est, frame[list(X.columns)]._meta_nonempty, reset=True)
        features = list(X.columns)
        weighted = sample_weight is not None

        def stats_of(f: Any, check: bool) -> GlobalStats:
            return group_statistics(f[Y], f[G], f[W] if weighted else None, check_groups=check)

        est.repartitioned_ = False
        try:
            stats = stats_of(frame, group is not None)
        except GroupLayoutError:
            frame = partition_by_group(frame, G)
            stats = stats_of(frame, False)
            est.repartitioned_ = True
        frame, keep = nonempty_partitions(frame.persist(), stats.rows)  # LightGBM fails on empty partitions
        stats = stats.partitions(keep)
        est.n_partitions_ = int(frame.npartitions)
        return DaskData(self.client, frame, features, stats, _sums(stats), weighted, frame[features]._meta)

    def prepare_evals(self, est: Any, eval_set: Any) -> list[Any]:
        if eval_set is None:
            return []
        check_eval_set(eval_set)
        return eval_frames(eval_set, list(est._columns), Y)

    def eval_labels(self, evals: list[Any]) -> list[np.ndarray]:
        return [f[Y].compute().to_numpy() for f in evals[-1:]]

    def sums(self, data: TrainingData, conversion_weight: float = 0.0) -> LabelSums:
        assert isinstance(data, DaskData)
        return _sums(data.stats_for(conversion_weight))

    def subset(self, data: TrainingData, keep: Any) -> DaskData:
        """The rows whose group ``keep(ids)`` marks (whole groups): filtered on the workers, statistics redone."""
        assert isinstance(data, DaskData)
        frame = data.frame.map_partitions(_keep_part, keep, meta=data.frame._meta)
        stats = group_statistics(frame[Y], frame[G], frame[W] if data.weighted else None, check_groups=False)
        frame, kept = nonempty_partitions(frame, stats.rows)
        stats = stats.partitions(kept)
        return DaskData(data.client, frame, data.features, stats, _sums(stats), data.weighted, data.meta)

    def outcomes(self, data: TrainingData, model: Any) -> tuple[Outcomes, Outcomes]:
        """Binned outcomes of a model's pCTR and pCTCVR, reduced on the workers (see gbdt_pwiser.calibration)."""
        import dask

        assert isinstance(data, DaskData)
        parts = [dask.delayed(_outcomes_part)(p, model, data.features, data.weighted) for p in data.frame.to_delayed()]
        ctr, ctcvr = Outcomes.empty(), Outcomes.empty()
        for a, b in dask.compute(*parts):
            ctr, ctcvr = ctr + a, ctcvr + b
        return ctr, ctcvr

    def close(self, data: TrainingData) -> None:
        assert isinstance(data, DaskData)
        data.frame = None

    # ------------------------------------------------------------------ training
    def _objective(self, data: DaskData, task: Task) -> Any:
        obj = task.objective
        stats = data.stats_for(task.conversion_weight)
        if self.library.n_outputs == 2:
            out = GlobalSharedCTCVRObjective.from_stats(obj, stats)
        elif task.ctr is not None:
            out = EntireSpaceLabelObjective(device=obj.device, n_jobs=obj.n_jobs)
        else:
            out = GlobalPWiseRObjective.from_stats(obj, stats)
        if task.init is None:
            return out
        # XGBoost continues from margins that hold its base_score; LightGBM's lack the offset
        shift = task.init.offset if self.library.name == "lightgbm" else 0.0
        return _Continued(out, shift, task.first_round)

    def _rows(self, data: DaskData, task: Task) -> tuple[Any, Any, Any, Any]:
        """Features, label, weight (dask collections) and the group column of the task's rows."""
        frame = data.frame
        if task.rows == "clicked":  # the CVR booster's own rows: no conversion weighting
            sub, _ = nonempty_partitions(frame[frame[Y] >= 1])  # partitions without clicks dropped
            return sub[data.features], (sub[Y] == 2).astype(np.float32), sub[W] if data.weighted else None, None
        weight = data.weight(task.conversion_weight)
        X = data.X()
        if task.transform is not None:
            X = X.map_partitions(task.transform, meta=task.transform(X._meta))
        if task.ctr is not None:
            label = frame.map_partitions(
                _esl_part, self.library, task.ctr, data.features, meta=pd.Series([], dtype=np.float32, name=ESL)
            )
            return X, label, weight, None
        return X, frame[Y], weight, frame[G]

    def train(self, data: TrainingData, task: Task, evals: list[Any]) -> FitResult:
        assert isinstance(data, DaskData)
        X, label, weight, group = self._rows(data, task)
        obj = None if task.objective is None else self._objective(data, task)
        which = "cvr" if task.rows == "clicked" else "ctr"
        with worker_lost(task.name.upper(), data.client):
            if self.library.name == "xgboost":
                return self._train_xgboost(data, task, X, label, weight, group, obj, evals, which)
            return self._train_lightgbm(data, task, X, label, weight, group, obj)

    def _train_xgboost(
        self,
        data: DaskData,
        task: Task,
        X: Any,
        label: Any,
        weight: Any,
        group: Any,
        obj: Any,
        evals: list[Any],
        which: str,
    ) -> FitResult:
        import xgboost as xgb
        import xgboost.dask  # not imported by "import xgboost"

        client = data.client
        categorical = task.transform is None
        params = {**task.params, "disable_default_eval_metric": 1}
        if obj is None:
            params["objective"] = "binary:logitraw"  # log-loss; predictions stay raw margins
        elif task.init is None:  # a continued booster keeps its own base_score
            params["base_score"] = (
                float(task.init_margin)
                if self.library.n_outputs == 1
                else [float(v) for v in np.asarray(task.init_margin).reshape(-1)]
            )
        # A continued booster is predicted on the training matrix to start from; on a quantised matrix XGBoost
        # does that from bins (where its split values fall between the matrix's cuts a row's start is off), so a
        # continued fit keeps the raw values (DaskDMatrix).
        quantile = task.init is None
        if group is not None:  # the funnel labels and groups (global qid, or group-start flags with weights)
            dtrain = xgboost_dmatrix(
                client,
                X,
                label,
                group,
                weight,
                stats=data.stats_for(task.conversion_weight),
                check_groups=False,
                enable_categorical=categorical,
                quantile=quantile,
            )
        else:
            cls = xgb.dask.DaskQuantileDMatrix if quantile else xgb.dask.DaskDMatrix
            dtrain = cls(client, X, label=label, weight=weight, enable_categorical=categorical)
        ev = xgboost_evals(client, evals, data.features, Y, which, task.metric) if evals else []
        init = None if task.init is None else self.library.truncate(task.init.booster, task.init.n_rounds)
        out = xgb.dask.train(
            client,
            xgboost_eval_params(params, ev),
            dtrain,
            num_boost_round=task.n_rounds,
            obj=obj,
            evals=ev,
            early_stopping_rounds=task.early_stopping_rounds,
            verbose_eval=False,
            xgb_model=init,
        )
        return xgboost_result(out, task.metric, task.early_stopping_rounds)

    def _train_lightgbm(
        self, data: DaskData, task: Task, X: Any, label: Any, weight: Any, group: Any, obj: Any
    ) -> FitResult:
        import lightgbm as lgb

        kw = {**_no_threads(task.params), "metric": "None"}
        client = data.client
        cont = {} if task.init is None else {"init_model": self.library.truncate(task.init.booster, task.init.n_rounds)}
        if group is not None:
            model = lgb.dask.DaskLGBMRanker(objective=obj, n_estimators=task.n_rounds, client=client, **kw)
            fit_kw = lightgbm_fit_kwargs(
                X,
                label,
                group,
                weight,
                stats=data.stats_for(task.conversion_weight),
                check_groups=False,
                init_margin=float(task.init_margin),
            )
            if task.init is not None:  # LightGBM starts from the previous trees' raw scores
                fit_kw.pop("init_score")
            model.fit(**fit_kw, **cont)
        else:
            model = lgb.dask.DaskLGBMRegressor(
                objective="binary" if obj is None else obj, n_estimators=task.n_rounds, client=client, **kw
            )
            start = (
                None
                if obj is None or task.init is not None
                else label.astype(np.float64) * 0.0 + float(task.init_margin)
            )
            model.fit(X, label, sample_weight=weight, init_score=start, **cont)
        offset = 0.0 if obj is None else float(task.init_margin) if task.init is None else float(task.init.offset)
        return FitResult(model.booster_, offset, model.booster_.current_iteration(), None, {})
