"""Booster libraries: everything that differs between XGBoost and LightGBM in one process, behind one interface.

A booster library trains one booster in this process from a gradient
function, predicts its raw margin and (de)serialises it. It knows nothing
about estimators or where the rows come from: the in-process engines
(:mod:`gbdt_pwiser.engines.local`) hand it plain values (hyper-parameters, a
:class:`TrainData`, a list of :class:`EvalData`, a gradient function) and get
a :class:`~gbdt_pwiser.engines.FitResult` back. The Dask engine uses
``params``, ``predict_margin`` and the model format from here and trains with
``xgboost.dask``/``lightgbm.dask`` itself.

The interface
-------------
``params(learning_rate=, max_depth=, seed=, nthread=, device=) -> dict``
    The library's native parameters for these estimator settings; the
    estimator merges the user's ``ctr_params``/``cvr_params`` over them.
``train(params, n_rounds, data, evals, grad, init_margin, metric_name, early_stopping_rounds, tick, init) -> FitResult``
    Boost ``n_rounds`` rounds on ``data`` starting from ``init_margin``, or
    from the margins of ``init`` (a :class:`~gbdt_pwiser.engines.FitResult`
    to continue: its first ``n_rounds`` rounds plus its offset) when given.
    ``grad(margin) -> (grad, hess)`` is the custom objective (``None``: the
    library's native binary log-loss on 0/1 labels, with its own intercept).
    Every round each ``EvalData.metric`` gets that set's raw margin (higher is
    better) and is recorded under ``metric_name``; with
    ``early_stopping_rounds`` the **last** eval set decides, by
    :class:`~gbdt_pwiser.engines.Stopper`'s rule, identically for every library.
    ``tick(1)`` is called after each round (progress bars).
``predict_margin(booster, X, n_rounds, nthread) -> ndarray``
    float64 raw margin of the first ``n_rounds`` rounds, *without*
    ``FitResult.offset``.
``to_bytes(booster) -> bytes`` / ``from_bytes(raw, nthread) -> booster``
    The library's native model format (``suffix`` names the file type).

A library with ``n_outputs = 2`` (:class:`XGBoostSharedLibrary`, the shared
CTR/CVR booster) works on ``(n, 2)`` margins ``[z, u]`` throughout: its
``init_margin`` is a 2-vector, ``grad`` and every ``EvalData.metric`` receive
``(n, 2)`` arrays and ``predict_margin`` returns one.
:func:`library` returns the library of a ``backend=`` name and a number of outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._base import FitResult, Stopper

__all__ = [
    "BoosterLibrary",
    "LIBRARIES",
    "SHARED_LIBRARIES",
    "XGBoostLibrary",
    "LightGBMLibrary",
    "XGBoostSharedLibrary",
    "EvalData",
    "GradFn",
    "TrainData",
    "library",
]

#: ``margin -> (grad, hess)``: the custom objective of one booster.
GradFn = Callable[[Any], "tuple[Any, Any]"]


@dataclass
class TrainData:
    """Training rows of one booster.

    ``label`` holds funnel labels (custom objective) or 0/1 targets (native
    log-loss); ``weight`` per-row weights or ``None``.
    """

    X: Any
    label: np.ndarray
    weight: np.ndarray | None


@dataclass
class EvalData:
    """One evaluation set: features, labels, its starting margin and a metric of the raw margin.

    ``metric(margin) -> float`` is higher-is-better (an AUC); ``init_margin`` is
    the starting margin of the set's rows (LightGBM's ``init_score``).
    """

    X: Any
    label: np.ndarray
    init_margin: Any  # float; a 2-vector for a backend with two outputs
    metric: Callable[[np.ndarray], float]


def _plain_history(history: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    return {d: {m: [float(v) for v in vals] for m, vals in ms.items()} for d, ms in history.items()}


def _n_rows(X: Any) -> int:
    return int(X.shape[0])


class BoosterLibrary:
    """The interface of a booster library (see the module docstring)."""

    #: name used in ``CTCVRClassifier(backend=...)``
    name = ""
    #: file suffix of the native model format
    suffix = ""
    #: whether the custom objective's gradients may live on a GPU (``device="cuda"``)
    device_gradients = False
    #: margins per row: 1, or 2 for the shared CTR/CVR booster (``[z, u]``)
    n_outputs = 1

    def params(
        self, *, learning_rate: float, max_depth: int | None, seed: int, nthread: int | None, device: str
    ) -> dict[str, Any]:
        """Native parameters for the estimator's settings."""
        raise NotImplementedError

    def train(
        self,
        params: dict[str, Any],
        n_rounds: int,
        data: TrainData,
        evals: list[EvalData],
        grad: GradFn | None,
        init_margin: float,
        metric_name: str,
        early_stopping_rounds: int | None,
        tick: Callable[[int], Any] | None = None,
        init: FitResult | None = None,
    ) -> FitResult:
        """Train a booster from ``init_margin`` with ``grad(margin) -> (grad, hess)`` (see the module docstring)."""
        raise NotImplementedError

    def predict_margin(self, booster: Any, X: Any, n_rounds: int, nthread: int | None) -> np.ndarray:
        """Raw margin of the first ``n_rounds`` rounds (without ``FitResult.offset``), float64."""
        raise NotImplementedError

    def to_bytes(self, booster: Any) -> bytes:
        """The booster in the library's native format."""
        raise NotImplementedError

    def from_bytes(self, raw: bytes, nthread: int | None) -> Any:
        """A booster from :meth:`to_bytes`'s output."""
        raise NotImplementedError

    def importances(self, booster: Any, n_features: int, n_rounds: int) -> tuple[np.ndarray, np.ndarray]:
        """Total gain and number of splits of each feature (by position) over the first ``n_rounds`` rounds."""
        raise NotImplementedError

    def contributions(self, booster: Any, X: Any, n_rounds: int, nthread: int | None) -> np.ndarray:
        """Per-row contributions (the library's own SHAP) to the raw margin: ``(n, d + 1)``, last column the bias.

        The row sums are the margin of :meth:`predict_margin` (without ``FitResult.offset``).
        """
        raise NotImplementedError


class XGBoostLibrary(BoosterLibrary):
    """``xgb.train`` with a custom objective (or ``binary:logitraw``); models in UBJSON."""

    name = "xgboost"
    suffix = "ubj"
    device_gradients = True

    def params(self, *, learning_rate, max_depth, seed, nthread, device):
        p: dict[str, Any] = {
            "tree_method": "hist",
            "eta": float(learning_rate),
            "seed": seed,
            "device": device,
            "verbosity": 1,
        }
        if max_depth is not None:
            p["max_depth"] = int(max_depth)
        if nthread is not None:
            p["nthread"] = nthread
        return p

    def _dmatrix(self, X: Any, label: Any = None, weight: Any = None, nthread: int | None = None) -> Any:
        import xgboost as xgb

        if isinstance(X, xgb.DMatrix):  # built by the caller (external memory): labels and weights inside
            return X
        # multi-output trees refuse categorical features: the shared estimator passes codes
        return xgb.DMatrix(
            X,
            label=label,
            weight=weight,
            missing=np.nan,
            enable_categorical=isinstance(X, pd.DataFrame) and self.n_outputs == 1,
            nthread=nthread,
        )

    def _margins(self, predt: Any) -> np.ndarray:
        z = np.asarray(predt, dtype=np.float64)
        return z.reshape(-1) if self.n_outputs == 1 else z.reshape(-1, self.n_outputs)

    def train(
        self, params, n_rounds, data, evals, grad, init_margin, metric_name, early_stopping_rounds, tick=None, init=None
    ):
        import xgboost as xgb

        params = {**params, "disable_default_eval_metric": 1}
        if grad is None:
            params["objective"] = "binary:logitraw"  # log-loss; predictions stay raw margins
        elif init is None:  # a continued booster keeps its own base_score
            # a custom objective has an identity link; XGBoost wants plain floats for a vector start
            params["base_score"] = (
                float(init_margin) if self.n_outputs == 1 else [float(v) for v in np.asarray(init_margin).reshape(-1)]
            )
        nthread = params.get("nthread")
        dtrain = self._dmatrix(data.X, data.label, data.weight, nthread=nthread)
        dmats = [self._dmatrix(e.X, e.label, nthread=nthread) for e in evals]
        by_id = {id(d): e.metric for d, e in zip(dmats, evals, strict=True)}

        def custom_metric(predt: np.ndarray, dmat: Any) -> list[tuple[str, float]]:
            return [(metric_name, by_id[id(dmat)](self._margins(predt)))]

        callbacks: list[xgb.callback.TrainingCallback] = []
        stopper = Stopper(early_stopping_rounds) if early_stopping_rounds else None
        if stopper is not None:
            watch = f"valid_{len(evals) - 1}"

            class _Stop(xgb.callback.TrainingCallback):
                def __init__(self, stopper: Stopper) -> None:
                    super().__init__()
                    self.stopper = stopper

                def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                    return self.stopper.update(epoch, float(evals_log[watch][metric_name][-1]))

            callbacks.append(_Stop(stopper))
        if tick is not None:

            class _Tick(xgb.callback.TrainingCallback):
                def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                    tick(1)
                    return False

            callbacks.insert(0, _Tick())
        history: dict[str, Any] = {}
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=n_rounds,
            evals=[(d, f"valid_{k}") for k, d in enumerate(dmats)],
            obj=None if grad is None else (lambda predt, _dtrain: grad(predt)),
            custom_metric=custom_metric if evals else None,
            callbacks=callbacks,
            evals_result=history,
            verbose_eval=False,
            xgb_model=None if init is None else self.truncate(init.booster, init.n_rounds),
        )
        best = None if stopper is None else stopper.best_iteration
        used = booster.num_boosted_rounds() if best is None else best + 1
        return FitResult(booster, 0.0, int(used), best, _plain_history(history))

    def predict_margin(self, booster, X, n_rounds, nthread):
        margin = booster.predict(self._dmatrix(X, nthread=nthread), output_margin=True, iteration_range=(0, n_rounds))
        return self._margins(margin)

    def truncate(self, booster, n_rounds):
        """The first ``n_rounds`` rounds of ``booster`` (a new booster; the model to continue from)."""
        return booster if booster.num_boosted_rounds() == n_rounds else booster[:n_rounds]

    def to_bytes(self, booster):
        return bytes(booster.save_raw("ubj"))

    def from_bytes(self, raw, nthread):
        import xgboost as xgb

        booster = xgb.Booster(model_file=bytearray(raw))
        if nthread is not None:
            booster.set_param({"nthread": nthread})
        return booster

    def importances(self, booster, n_features, n_rounds):
        b = self.truncate(booster, n_rounds)
        gain, split = np.zeros(n_features), np.zeros(n_features)
        names = b.feature_names or [f"f{j}" for j in range(n_features)]
        pos = {name: j for j, name in enumerate(names)}
        for out, kind in ((gain, "total_gain"), (split, "weight")):
            for name, value in b.get_score(importance_type=kind).items():
                out[pos[name]] = float(value)
        return gain, split

    def contributions(self, booster, X, n_rounds, nthread):
        return np.asarray(
            booster.predict(self._dmatrix(X, nthread=nthread), pred_contribs=True, iteration_range=(0, n_rounds)),
            dtype=np.float64,
        )


class LightGBMLibrary(BoosterLibrary):
    """``lgb.train`` with a custom objective (``init_score`` as the start) or ``binary``; models as text."""

    name = "lightgbm"
    suffix = "txt"
    device_gradients = False  # LightGBM takes a custom objective's gradients as host arrays only

    def params(self, *, learning_rate, max_depth, seed, nthread, device):
        # feature_pre_filter=False: when no feature can be split (tiny data) LightGBM drops them all
        # and then aborts with a custom objective; deterministic + force_col_wise: reproducible fits.
        p: dict[str, Any] = {
            "learning_rate": float(learning_rate),
            "seed": seed,
            "verbose": -1,
            "deterministic": True,
            "force_col_wise": True,
            "feature_pre_filter": False,
        }
        if max_depth is not None:
            p["max_depth"] = int(max_depth)
            p["num_leaves"] = int(min(31, 2 ** int(max_depth)))
        if nthread is not None:
            p["num_threads"] = nthread
        return p

    def train(
        self, params, n_rounds, data, evals, grad, init_margin, metric_name, early_stopping_rounds, tick=None, init=None
    ):
        import lightgbm as lgb

        native = grad is None
        # Continuing, LightGBM starts every row from the previous booster's raw score and drops any
        # init_score; the previous starting margin (our offset) is added back to what the objective
        # and the metrics see.
        shift = 0.0 if init is None or native else float(init.offset)
        params = {
            **params,
            "metric": "None",
            "objective": "binary" if native else (lambda preds, _dataset: grad(preds + shift)),
        }

        def start(n: int, value: float) -> np.ndarray | None:
            return None if native or init is not None else np.full(n, value, dtype=np.float64)

        dtrain = lgb.Dataset(
            data.X, label=data.label, weight=data.weight, init_score=start(_n_rows(data.X), init_margin)
        )
        dvalids = [
            lgb.Dataset(e.X, label=e.label, init_score=start(_n_rows(e.X), e.init_margin), reference=dtrain)
            for e in evals
        ]
        by_id = {id(d): e.metric for d, e in zip(dvalids, evals, strict=True)}

        def feval(preds: np.ndarray, ds: Any) -> tuple[str, float, bool]:
            z = np.asarray(preds, dtype=np.float64).reshape(-1)
            if native:  # LightGBM hands built-in objectives' probabilities to feval
                with np.errstate(divide="ignore"):
                    z = np.log(z) - np.log1p(-z)
            return metric_name, by_id[id(ds)](z + shift), True

        history: dict[str, Any] = {}
        callbacks: list[Any] = [lgb.record_evaluation(history)] if evals else []
        if tick is not None:

            def _tick(env: Any) -> None:
                tick(1)

            _tick.order = 5  # type: ignore[attr-defined]
            callbacks.append(_tick)
        stopper = Stopper(early_stopping_rounds) if early_stopping_rounds else None
        if stopper is not None:
            watch = f"valid_{len(evals) - 1}"
            best_list: list[Any] = []

            def stop(env: Any) -> None:
                for item in env.evaluation_result_list:
                    if item[0] == watch:
                        done = stopper.update(env.iteration, float(item[2]))
                        if stopper.best_iteration == env.iteration:
                            best_list[:] = env.evaluation_result_list
                        if done:
                            raise lgb.callback.EarlyStopException(stopper.best_iteration, list(best_list))

            stop.order = 30  # type: ignore[attr-defined]
            callbacks.append(stop)
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=n_rounds,
            valid_sets=dvalids,
            valid_names=[f"valid_{k}" for k in range(len(dvalids))],
            feval=feval if evals else None,
            callbacks=callbacks,
            init_model=None if init is None else self.truncate(init.booster, init.n_rounds),
        )
        best = None if stopper is None else stopper.best_iteration
        used = booster.current_iteration() if best is None else best + 1
        offset = 0.0 if native else float(init_margin) if init is None else float(init.offset)
        return FitResult(booster, offset, int(used), best, _plain_history(history))

    def truncate(self, booster, n_rounds):
        """The first ``n_rounds`` rounds of ``booster`` (a new booster; the model to continue from)."""
        import lightgbm as lgb

        if booster.current_iteration() == n_rounds:
            return booster
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=n_rounds))

    def predict_margin(self, booster, X, n_rounds, nthread):
        kw = {} if nthread is None else {"num_threads": nthread}
        return np.asarray(booster.predict(X, raw_score=True, num_iteration=n_rounds, **kw), dtype=np.float64)

    def to_bytes(self, booster):
        return booster.model_to_string().encode("utf-8")

    def from_bytes(self, raw, nthread):
        import lightgbm as lgb

        return lgb.Booster(model_str=raw.decode("utf-8"))

    def importances(self, booster, n_features, n_rounds):
        return (
            np.asarray(booster.feature_importance("gain", iteration=n_rounds), dtype=np.float64),
            np.asarray(booster.feature_importance("split", iteration=n_rounds), dtype=np.float64),
        )

    def contributions(self, booster, X, n_rounds, nthread):
        kw = {} if nthread is None else {"num_threads": nthread}
        return np.asarray(booster.predict(X, pred_contrib=True, num_iteration=n_rounds, **kw), dtype=np.float64)


class XGBoostSharedLibrary(XGBoostLibrary):
    """One XGBoost booster with two outputs ``[z, u]`` whose trees share every split.

    ``multi_strategy="multi_output_tree"`` with ``num_target=2`` (vector
    leaves); the funnel label stays one column. Margins, the starting margin,
    gradients and metrics are ``(n, 2)`` / 2-vectors (see the module docstring).
    Categorical columns must arrive as codes (XGBoost 3.2's multi-output trees
    refuse categorical features).
    """

    name = "xgboost"
    n_outputs = 2
    device_gradients = False  # SharedCTCVRObjective computes its gradients on the CPU

    def params(self, *, learning_rate, max_depth, seed, nthread, device):
        return {
            **XGBoostLibrary.params(
                self, learning_rate=learning_rate, max_depth=max_depth, seed=seed, nthread=nthread, device=device
            ),
            "multi_strategy": "multi_output_tree",
            "num_target": 2,
        }


#: ``backend=`` name → booster library class (one output per row).
LIBRARIES: dict[str, type[BoosterLibrary]] = {"xgboost": XGBoostLibrary, "lightgbm": LightGBMLibrary}
#: ``backend=`` name → library of the shared two-output booster (``structure="shared"``).
SHARED_LIBRARIES: dict[str, type[BoosterLibrary]] = {"xgboost": XGBoostSharedLibrary}


def library(backend: str, n_outputs: int = 1) -> BoosterLibrary:
    """The booster library of ``backend`` with ``n_outputs`` margins per row.

    A missing two-output library is refused by :func:`gbdt_pwiser.engines.limits.check`
    before any training; here it is a ``KeyError``.

    Examples
    --------
    >>> from gbdt_pwiser.engines.boosters import library
    >>> library("lightgbm").suffix, library("xgboost", n_outputs=2).n_outputs
    ('txt', 2)
    """
    return (LIBRARIES if n_outputs == 1 else SHARED_LIBRARIES)[backend]()
