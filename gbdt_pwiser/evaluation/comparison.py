"""``compare``: fit the models of some methods on splits of a log by group, evaluate them, compare them to a baseline.

The main job of ``gbdt-pwiser compare`` and its evidence run are this module:
each seed splits the log by group (:mod:`.data`), each :class:`~.methods.Model`
is fitted on the training part (once per distinct estimator) and scored on
the test part (:func:`gbdt_pwiser.metrics.evaluate_predictions`: AUCs, GAUCs,
log losses, calibration), and each model's AUC differences to the baseline
get a paired bootstrap interval over test groups
(:func:`gbdt_pwiser._bootstrap.paired_auc_difference`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._bootstrap import group_bootstrap_draws, paired_auc_difference, weighted_auc
from .._optional import require
from .._validation import check_int, check_real
from ..metrics import evaluate_predictions
from . import plots
from .data import fit, split
from .methods import METHODS, Model, fit_ranker
from .methods import models as make_models
from .pairs import pair_counts, test_counts

__all__ = ["BOOTSTRAP_METRICS", "POINT_METRICS", "Comparison", "compare", "run_comparison", "fit_plan", "bootstrap_sd"]

#: AUC differences with a bootstrap interval: metric -> (target, score, rows).
BOOTSTRAP_METRICS: dict[str, tuple[str, str, str]] = {
    "ctr_auc": ("click", "p_ctr", "all"),
    "ctr_conv_auc": ("conversion", "p_ctr", "all"),
    "cvr_auc": ("conversion", "p_cvr", "clicked"),
    "ctcvr_auc": ("conversion", "p_ctcvr", "all"),
}
#: the metrics of a trade-off point (the evidence run's curves): key -> (target, score)
POINT_METRICS: dict[str, tuple[str, str]] = {
    "ctr_auc": ("click", "p_ctr"),
    "ctr_conv_auc": ("conversion", "p_ctr"),
    "ctcvr_auc": ("conversion", "p_ctcvr"),
}


def _targets(y: np.ndarray) -> dict[str, np.ndarray]:
    return {"click": y >= 1, "conversion": y == 2}


def bootstrap_sd(
    pred: dict[str, np.ndarray], y: np.ndarray, group: np.ndarray, n_resamples: int, seed: int
) -> dict[str, float]:
    """Standard deviation of each point metric over a bootstrap of test groups (the error bar of one split)."""
    _, codes = np.unique(group, return_inverse=True)
    draws = group_bootstrap_draws(int(codes.max()) + 1, n_resamples, seed)
    counts = np.stack([np.bincount(d, minlength=int(codes.max()) + 1) for d in draws])[:, codes]
    t = _targets(y)
    return {
        k: float(np.nanstd(weighted_auc(t[target], pred[col], counts), ddof=1))
        for k, (target, col) in POINT_METRICS.items()
    }


def fit_plan(models: Sequence[Model]) -> list[Model]:
    """The distinct fits of ``models`` per seed, in order (the ranker needs the BCE chain's pCVR: BCE first)."""
    plan: dict[tuple[Any, ...], Model] = {}
    if any(m.method == "ranker" for m in models):
        plan[Model("bce").key] = Model("bce")
    for m in models:
        plan.setdefault(m.key, m)
    return list(plan.values())


@dataclass
class Comparison:
    """The outcome of :func:`run_comparison`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model and seed: ``model`` (its name), ``method``,
        ``knob``, ``value``, ``seed``, the metrics of
        :func:`~gbdt_pwiser.metrics.evaluate_predictions` and ``fit_s``.
    differences : pandas.DataFrame
        One row per model (but the baseline), seed and metric: ``delta``
        (model − baseline) and, for the AUCs of :data:`BOOTSTRAP_METRICS`,
        the paired bootstrap interval ``low``, ``high`` over test groups and
        ``n_valid`` resamples.
    data : dict
        The log (rows, groups, click rate, conversion rate among clicks), the
        first seed's test part (rows, clicks, conversions, groups) and the
        pairs PWiseR has there (:func:`~gbdt_pwiser.evaluation.pair_counts`).
    predictions : dict
        seed -> model name -> ``{"p_ctr", "p_cvr", "p_ctcvr"}`` on that seed's test rows.
    tests : dict
        seed -> the test part (an ``AdLog``).
    """

    models: list[Model]
    seeds: list[int]
    table: pd.DataFrame
    differences: pd.DataFrame
    data: dict[str, Any]
    baseline: str | None
    bootstrap: int
    confidence: float
    predictions: dict[int, dict[str, dict[str, np.ndarray]]] = field(repr=False)
    tests: dict[int, Any] = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def results(self, seed: int | None = None) -> dict[str, dict[str, float]]:
        """The metrics of each model on one seed's split (default the first): name -> metric -> value."""
        seed = self.seeds[0] if seed is None else seed
        rows = self.table[self.table["seed"] == seed].set_index("model")
        drop = ["method", "knob", "value", "seed"]
        return {name: {k: float(v) for k, v in row.drop(drop).items()} for name, row in rows.iterrows()}

    def summary(self, n_resamples: int = 100) -> pd.DataFrame:
        """Each model's point metrics (:data:`POINT_METRICS`), mean and SD: over seeds, or over a bootstrap.

        With several seeds the SD is over seeds; with one, over ``n_resamples``
        (at most ``bootstrap``) bootstrap resamples of its test groups (NaN
        without a bootstrap).
        """
        rows = []
        for m in self.models:
            t = self.table[(self.table["model"] == m.name) & (self.table["method"] == m.method)]
            row: dict[str, Any] = {
                "model": m.name,
                "method": m.method,
                "knob": METHODS[m.method].knob,
                "value": m.value,
                "n_seeds": len(t),
            }
            if len(self.seeds) == 1 and self.bootstrap:
                seed = self.seeds[0]
                test = self.tests[seed]
                sd = bootstrap_sd(
                    self.predictions[seed][m.name], test.y, test.group, min(n_resamples, self.bootstrap), seed
                )
            else:
                sd = {
                    k: float(np.nanstd(t[k].to_numpy(float), ddof=1)) if len(t) > 1 else float("nan")
                    for k in POINT_METRICS
                }
            for k in POINT_METRICS:
                row[k] = float(np.nanmean(t[k].to_numpy(float)))
                row[f"{k}_sd"] = sd[k]
            rows.append(row)
        return pd.DataFrame(rows)

    def error_bars(self) -> str:
        """What the SDs of :meth:`summary` are."""
        if len(self.seeds) > 1:
            return "SD over seeds " + ",".join(map(str, self.seeds))
        if self.bootstrap:
            return f"SD over {min(100, self.bootstrap)} bootstrap resamples of test groups"
        return "no error bars (one seed, no bootstrap)"

    def curves(self, summary: pd.DataFrame | None = None) -> dict[str, list[dict[str, Any]]]:
        """The :meth:`summary` points grouped by method (the trade-off plots' curves), labelled by method."""
        s = self.summary() if summary is None else summary
        out: dict[str, list[dict[str, Any]]] = {}
        for raw in s.to_dict("records"):
            rec = {str(k): v for k, v in raw.items()}
            value = None if rec["value"] is None or pd.isna(rec["value"]) else float(rec["value"])
            knob = METHODS[rec["method"]].knob  # (pandas turns a None among strings into NaN)
            out.setdefault(METHODS[rec["method"]].label, []).append({**rec, "knob": knob, "value": value})
        return out

    def sweep(self) -> list[dict[str, float]]:
        """The first seed's metrics of the BCE and PWiseR chains, by λ (the λ sweep)."""
        res = self.results()
        pts = [{"lam": m.key[1], **res[m.name]} for m in fit_plan(self.models) if m.key[0] == "chain" and m.key[2] == 0]
        return sorted(pts, key=lambda r: r["lam"])

    def figures(
        self, models: Sequence[str] | None = None, title: str = "", names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The plots (matplotlib figures) by file name, on the first seed's test part.

        ``roc.png`` and ``calibration.png`` (reliability) of ``models`` (default
        all), ``lambda_sweep.png`` when the chain was fitted at three λ or
        more, and the trade-off plots ``tradeoff_conversion.png`` and
        ``tradeoff_ctcvr.png`` when a method has several knob values or
        there are several seeds. ``names``: only these plots (default all
        that apply). Needs matplotlib (the ``cli`` extra).
        """
        require("matplotlib", extra="cli", feature="Comparison.figures")
        seed = self.seeds[0]
        test = self.tests[seed]
        chosen = {n: p for n, p in self.predictions[seed].items() if models is None or n in models}
        wanted = lambda name: names is None or name in names
        out = {}
        if wanted("roc.png"):
            out["roc.png"] = plots.roc_figure(chosen, test.y)
        if wanted("calibration.png"):
            out["calibration.png"] = plots.calibration_figure(chosen, test.y)
        if wanted("lambda_sweep.png") and len(self.sweep()) >= 3:
            out["lambda_sweep.png"] = plots.sweep_figure(self.sweep(), title or "AUC against λ")
        if not (wanted("tradeoff_conversion.png") or wanted("tradeoff_ctcvr.png")):
            return out
        curves = self.curves()
        if len(self.seeds) > 1 or any(len(v) > 1 for v in curves.values()):
            t = f"{title}: trade-off on held-out groups; bars: {self.error_bars()}"
            for name, key in (("tradeoff_conversion.png", "ctr_conv_auc"), ("tradeoff_ctcvr.png", "ctcvr_auc")):
                if wanted(name):
                    out[name] = plots.tradeoff_figure(curves, key, t)
        return out

    def save_plots(self, folder: str | Path, names: Sequence[str] | None = None, **kw: Any) -> list[Path]:
        """Write :meth:`figures` (those named by ``names``, default all that apply) as PNG files into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, fig in self.figures(names=names, **kw).items():
            fig.savefig(folder / name)
            written.append(folder / name)
        return written


def _check_args(
    seeds: Any, test_size: Any, bootstrap: Any, confidence: Any, calibration: Any, params: Any
) -> tuple[list[int], float, int, float, dict[str, Any]]:
    seeds = [seeds] if isinstance(seeds, int) else seeds
    if not isinstance(seeds, (list, tuple, range)) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    seeds = list(dict.fromkeys(check_int(s, "seed", lo=0) for s in seeds))
    test_size = check_real(test_size, "test_size", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    bootstrap = check_int(bootstrap, "bootstrap", lo=0)
    confidence = check_real(confidence, "confidence", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if calibration not in (None, "isotonic", "sigmoid"):
        raise ValueError(f'calibration must be None, "isotonic" or "sigmoid", got {calibration!r}')
    if params is not None and not isinstance(params, dict):
        raise TypeError(f"params must be a dict of CTCVRClassifier parameters, got {type(params).__name__}")
    return seeds, test_size, bootstrap, confidence, dict(params or {})


def run_comparison(
    log: Any,
    methods: Sequence[str] = ("bce", "pwiser", "weighted"),
    seeds: Sequence[int] = (0,),
    *,
    models: Sequence[Model] | None = None,
    lam: float | Sequence[float] = 1.0,
    conversion_weight: float | Sequence[float] = 1.0,
    test_size: float = 0.2,
    params: dict[str, Any] | None = None,
    calibration: str | None = None,
    baseline: str | None = "BCE",
    bootstrap: int = 200,
    confidence: float = 0.95,
    intervals: Sequence[str] | None = None,
    client: Any = None,
    progress: Any = None,
) -> Comparison:
    """Fit and compare models on splits of ``log`` by group; :func:`compare` returns its table.

    Parameters are those of :func:`compare`, and: ``models`` — an explicit
    list of :class:`~gbdt_pwiser.evaluation.Model` instead of ``methods``/
    ``lam``/``conversion_weight``; ``intervals`` — the models whose
    differences get bootstrap intervals (default all); ``progress`` — a
    tqdm-like bar (``set_description``, ``update``) advanced once per fit.
    """
    seeds, test_size, bootstrap, confidence, params = _check_args(
        seeds, test_size, bootstrap, confidence, calibration, params
    )
    chosen = list(models) if models is not None else make_models(methods, lam, conversion_weight)
    notes: list[str] = []
    backend = params.get("backend", "xgboost")
    if backend != "xgboost" and any(m.method == "shared" for m in chosen):
        chosen = [m for m in chosen if m.method != "shared"]
        notes.append(f"shared booster skipped: multi-output trees need backend xgboost (got {backend})")
    if client is not None and any(m.method == "ranker" for m in chosen):
        raise ValueError(
            "the ranker method fits XGBoost's/LightGBM's own ranking estimators in memory: drop it, or "
            "compare without a Dask client"
        )
    if not chosen:
        raise ValueError("no model to compare")
    names = [m.name for m in chosen]
    if baseline is not None and baseline not in names:
        raise ValueError(f"the baseline {baseline!r} is not among the models {names}")
    if calibration is not None:
        params["calibration"] = calibration
    make = _estimator_factory(params, client)
    rows, diffs = [], []
    predictions: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    tests: dict[int, Any] = {}
    data: dict[str, Any] = {}
    for seed in seeds:
        train, test, about = split(log, test_size, seed, client)
        if not data:
            data = {
                **about,
                "train_rows": len(train),
                **test_counts(test),
                "test_pairs": pair_counts(test.y, test.group),
            }
        tests[seed] = test
        fitted = _fit_all(fit_plan(chosen), make, train, test, seed, client, progress)
        predictions[seed] = {m.name: fitted[m.key][0] for m in chosen}
        for m in chosen:
            pred, fit_s = fitted[m.key]
            metrics = evaluate_predictions(test.y, pred["p_ctr"], pred["p_cvr"], test.group)
            rows.append(
                {
                    "model": m.name,
                    "method": m.method,
                    "knob": METHODS[m.method].knob,
                    "value": m.value,
                    "seed": seed,
                    **metrics,
                    "fit_s": fit_s,
                }
            )
        if baseline is not None:
            base = next(r for r in rows[-len(chosen) :] if r["model"] == baseline)
            for m, row in zip(chosen, rows[-len(chosen) :], strict=True):
                if m.name == baseline:
                    continue
                cis = bootstrap if intervals is None or m.name in intervals else 0
                diffs += _differences(
                    row, base, predictions[seed][m.name], predictions[seed][baseline], test, seed, cis, confidence
                )
    return Comparison(
        chosen,
        seeds,
        pd.DataFrame(rows),
        pd.DataFrame(diffs),
        data,
        baseline,
        bootstrap,
        confidence,
        predictions,
        tests,
        notes,
    )


def _estimator_factory(params: dict[str, Any], client: Any) -> Callable[..., Any]:
    if client is None:
        from ..sklearn import CTCVRClassifier as cls
    else:
        from ..dask import DaskCTCVRClassifier as cls
    cls(**params)  # unknown parameters: the estimator's own TypeError, before any fit

    def make(seed: int, **overrides: Any) -> Any:
        return cls(**{"random_state": seed, **params, **overrides})

    return make


def _fit_all(
    plan: list[Model], make: Callable[..., Any], train: Any, test: Any, seed: int, client: Any, progress: Any
) -> dict[tuple[Any, ...], tuple[dict[str, np.ndarray], float]]:
    """Fit every model of the plan; its test predictions and fit time, by :attr:`Model.key`."""
    out: dict[tuple[Any, ...], tuple[dict[str, np.ndarray], float]] = {}
    for m in plan:
        if progress is not None:
            progress.set_description(f"fit {m.name}" + (f" (seed {seed})" if seed else ""))
        est = make(seed, **m.params())
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. a sweep's λ = 0 warns nothing useful
            if m.method == "ranker":
                pctr = fit_ranker(est, train, test.X)
                pcvr = out[Model("bce").key][0]["p_cvr"]
            else:
                fit(est, train, client)
                pctr, pcvr = est.predict_ctr(test.X), est.predict_cvr(test.X)
        fit_s = time.perf_counter() - t0
        out[m.key] = ({"p_ctr": pctr, "p_cvr": pcvr, "p_ctcvr": pctr * pcvr}, fit_s)
        if progress is not None:
            progress.update()
    return out


def _differences(
    row: dict[str, Any],
    base: dict[str, Any],
    pred: dict[str, np.ndarray],
    base_pred: dict[str, np.ndarray],
    test: Any,
    seed: int,
    n_resamples: int,
    confidence: float,
) -> list[dict[str, Any]]:
    """Model − baseline per metric; the AUCs of :data:`BOOTSTRAP_METRICS` with a paired group-bootstrap interval."""
    skip = {"model", "method", "knob", "value", "seed", "fit_s"}
    out = []
    targets = _targets(test.y)
    rows = {"all": None, "clicked": test.y >= 1}
    for k in row:
        if k in skip:
            continue
        d: dict[str, Any] = {"model": row["model"], "seed": seed, "metric": k, "delta": float(row[k]) - float(base[k])}
        if n_resamples and k in BOOTSTRAP_METRICS:
            target, score, subset = BOOTSTRAP_METRICS[k]
            ci = paired_auc_difference(
                targets[target],
                pred[score],
                base_pred[score],
                test.group,
                rows=rows[subset],
                n_resamples=n_resamples,
                confidence=confidence,
                random_state=seed,
            )
            d.update({"low": ci["low"], "high": ci["high"], "n_valid": ci["n_valid"]})
        out.append(d)
    return out


def compare(
    log: Any,
    methods: Sequence[str] = ("bce", "pwiser", "weighted"),
    seeds: Sequence[int] = (0,),
    *,
    lam: float | Sequence[float] = 1.0,
    conversion_weight: float | Sequence[float] = 1.0,
    test_size: float = 0.2,
    params: dict[str, Any] | None = None,
    calibration: str | None = None,
    baseline: str | None = "BCE",
    bootstrap: int = 200,
    confidence: float = 0.95,
    client: Any = None,
    plots: str | Path | None = None,
) -> pd.DataFrame:
    """Compare ways to train pCTR/pCVR on your log: a table of test metrics per model and seed.

    Each seed splits the log by group (no group in both parts), fits every
    model on the training part and scores it on the test part: AUCs of pCTR
    (clicks, and conversions), pCVR and pCTCVR, GAUCs, log losses, and the
    calibration of pCTR and pCTCVR (predicted / observed, ECE). The columns
    ``<metric>_delta``, and for the AUCs ``<metric>_low``/``<metric>_high``,
    compare each model to ``baseline`` (a paired bootstrap over test groups,
    ``confidence`` interval; an interval that contains 0 shows no effect).

    Parameters
    ----------
    log : AdLog or ParquetLog
        The log (:func:`~gbdt_pwiser.datasets.load_log`,
        :func:`~gbdt_pwiser.datasets.make_ad_log`...); a ``ParquetLog`` needs
        ``client`` (it is read and split on the cluster).
    methods : list of str, default ("bce", "pwiser", "weighted")
        Among ``"bce"``, ``"pwiser"`` (knob ``lam``), ``"weighted"``
        (conversion-weighted BCE, knob ``conversion_weight``), ``"ranker"``
        and ``"shared"`` (knob ``lam``): see ``gbdt_pwiser.evaluation.methods``.
    seeds : list of int, default (0,)
        One split and fit per seed (the estimators' ``random_state``).
    lam, conversion_weight : float or list of floats, default 1.0
        The knob values of the methods (a list: one model per value).
    test_size : float, default 0.2
        Share of groups in the test part.
    params : dict, optional
        Parameters of every :class:`~gbdt_pwiser.CTCVRClassifier`
        (``backend``, ``n_estimators``, margins...).
    calibration : {"isotonic", "sigmoid"}, optional
        Fit every chain with calibrated predictions.
    baseline : str or None, default "BCE"
        The model the others are compared to (its name in the table).
    bootstrap : int, default 200
        Resamples of test groups for the intervals (0: none).
    client : distributed.Client, optional
        Train with :class:`~gbdt_pwiser.dask.DaskCTCVRClassifier` on this cluster.
    plots : str or path, optional
        A folder to write the plots into (``roc.png``, ``calibration.png``,
        and the λ sweep / trade-off plots when they apply);
        :meth:`run_comparison(...).figures() <gbdt_pwiser.evaluation.Comparison.figures>` gives them
        as matplotlib figures instead.

    Returns
    -------
    pandas.DataFrame
        One row per model and seed (see ``Comparison.table``) with the
        difference columns.

    Examples
    --------
    >>> import gbdt_pwiser
    >>> from gbdt_pwiser.datasets import make_ad_log
    >>> log = make_ad_log(600, ctr=0.1, cvr=0.2, random_state=0)
    >>> table = gbdt_pwiser.compare(
    ...     log, ["bce", "pwiser", "weighted"], seeds=[0], bootstrap=20, params={"n_estimators": 10, "n_jobs": 1}
    ... )
    >>> table["model"].tolist()
    ['BCE', 'PWiseR (λ=1)', 'weighted BCE (α=1)']
    >>> cols = ["ctr_auc", "ctcvr_auc", "ctcvr_ratio", "ctr_conv_auc_delta", "ctr_conv_auc_low"]
    >>> set(cols) <= set(table.columns)
    True
    """
    result = run_comparison(
        log,
        methods,
        seeds,
        lam=lam,
        conversion_weight=conversion_weight,
        test_size=test_size,
        params=params,
        calibration=calibration,
        baseline=baseline,
        bootstrap=bootstrap,
        confidence=confidence,
        client=client,
    )
    if plots is not None:
        result.save_plots(plots)
    table = result.table
    if len(result.differences):
        wide = result.differences.pivot_table(index=["model", "seed"], columns="metric", aggfunc="first")
        wide.columns = [f"{metric}_{what}" for what, metric in wide.columns]
        table = table.merge(wide.reset_index(), on=["model", "seed"], how="left")
    return table
