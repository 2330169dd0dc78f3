"""Evidence for the verdict of docs/evidence.md: chain vs shared booster vs neural multi-task models, BCE vs PWiseR.

On the simulator (``make_ad_log``) in two regimes, its defaults (sparse:
2.5 % CTR, 2.5 % of clicks convert) and a conversion-dense one (10 % CTR, 20 %
of clicks convert), for several seeds (each a new log), with a held-out split
by request, it fits

* ``chain BCE`` / ``chain PWiseR``: the library's default chain by hand with
  ``xgb.train``: a CTR booster with :class:`PWiseRObjective` (λ = 0 or 1),
  then a clicked-space CVR booster (``binary:logistic`` on the clicked rows,
  ``cvr_space="clicked"``, which does not depend on the CTR booster);
* ``chain weighted α=…``: conversion-weighted BCE, the CTR booster with
  ``sample_weight = 1 + α·conversion`` and the CVR booster of ``chain BCE``;
* ``chain entire BCE`` / ``chain entire PWiseR``: the same CTR boosters with an
  entire-space CVR booster (:class:`EntireSpaceCVRObjective`) on their pCTR;
* ``shared BCE`` / ``shared PWiseR`` (/ ``shared PWiseR β=0``): one XGBoost
  booster with vector leaves and :class:`SharedCTCVRObjective`, λ = 0 or 1
  (β = ``ctcvr_weight_ctr``);
* ``SharedBottom …`` / ``ESMM …`` (/ ``MMoE …``, ``PLE …``): the neural models
  of ``gbdt-pwiser bench-neural`` trained with BCE or BCE + λ·PWiseR
  (``fit_neural``, one torch thread),

all trees with the same settings and rounds per booster, on the same features
(categorical columns as codes, since multi-output trees refuse categorical
features). Reported: click AUC, the conversion AUC of pCTR, CVR AUC (clicked
rows) and CTCVR AUC (all rows) on the held-out requests, the mean over seeds,
and each model's difference to ``chain BCE`` with a 95 % interval from a paired
bootstrap over test requests, stratified by seed (every model is scored on the
same resamples; the interval is that of the mean over seeds of the per-seed
difference; it covers the test sample, not the training randomness, so the
number of seeds where the difference is positive is printed too). Results go
to ``benchmarks/results/verdict.json`` and ``verdict.md``; ``--docs`` also
rewrites the verdict tables of ``docs/evidence.md`` (``tests/bench/test_benchmarks_smoke.py``
checks that they are the ones this script renders from the JSON).

    python benchmarks/bench_verdict.py [--sparse-requests 6000] [--dense-requests 2000] [--seeds 0 1 2] [--docs]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from common import DOCS, write_between
from scipy.special import expit

from gbdt_pwiser import EntireSpaceCVRObjective, PWiseRObjective, initial_margin
from gbdt_pwiser._bootstrap import group_bootstrap_draws, weighted_auc
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.metrics import auc
from gbdt_pwiser.objectives import SharedCTCVRObjective, initial_margins, shared_probabilities
from gbdt_pwiser.sklearn._encode import CategoricalCodes

RESULTS = Path(__file__).resolve().parent / "results"
PAGE = DOCS / "evidence.md"  # its verdict block
BEGIN, END = "<!-- verdict:begin -->", "<!-- verdict:end -->"

#: the simulator's regimes: its defaults and a conversion-dense one
REGIMES: dict[str, dict[str, float]] = {"sparse": {}, "dense": {"ctr": 0.10, "cvr": 0.20}}
METRICS = ("click_auc", "conv_auc_of_pctr", "cvr_auc", "ctcvr_auc")
HEADERS = ("click AUC", "conv. AUC of pCTR", "CVR AUC (clicked)", "CTCVR AUC")
REFERENCE = "chain BCE"
NEURAL = {"SharedBottom": "shared_bottom", "ESMM": "esmm", "MMoE": "mmoe", "PLE": "ple"}
GBDT_MODELS = (
    "chain BCE",
    "chain PWiseR",
    "chain weighted",
    "chain entire BCE",
    "chain entire PWiseR",
    "shared BCE",
    "shared PWiseR",
    "shared PWiseR β=0",
)
ALL_MODELS = (*GBDT_MODELS, *(f"{n} {loss}" for n in NEURAL for loss in ("BCE", "PWiseR")))
DEFAULT_MODELS = (
    "chain BCE",
    "chain PWiseR",
    "chain weighted",
    "shared BCE",
    "shared PWiseR",
    "SharedBottom BCE",
    "SharedBottom PWiseR",
    "ESMM BCE",
    "ESMM PWiseR",
)


def _tree_params(a: argparse.Namespace, seed: int) -> dict[str, Any]:
    return {
        "tree_method": "hist",
        "max_depth": a.depth,
        "eta": a.eta,
        "max_bin": a.max_bin,
        "min_child_weight": 1.0,
        "nthread": a.nthread,
        "seed": seed,
        "disable_default_eval_metric": 1,
    }


class Split:
    """One seed's data, features and the boosters that several models share (fitted once)."""

    def __init__(self, regime: str, seed: int, a: argparse.Namespace) -> None:
        n_req = a.sparse_requests if regime == "sparse" else a.dense_requests
        log = make_ad_log(n_req, random_state=seed, with_truth=True, **REGIMES[regime])
        train, test = train_test_split_by_group(log, test_size=a.test_size, random_state=seed)
        self.train, self.test = train.sort_by_group(), test.align_categories(train)
        enc = CategoricalCodes().fit(self.train.X)
        self.Xtr, self.Xte = enc.transform(self.train.X), enc.transform(self.test.X)
        self.params, self.a, self.seed = _tree_params(a, seed), a, seed
        self.dte = xgb.DMatrix(self.Xte)
        self._ctr: dict[Any, Any] = {}
        self._clicked_cvr: np.ndarray | None = None

    def ctr_booster(self, lam: float, alpha: float = 0.0) -> Any:
        """The CTR booster of the chain (PWiseRObjective, λ; conversions weighted 1 + α)."""
        key = (lam, alpha)
        if key not in self._ctr:
            y = self.train.y
            obj: Any = PWiseRObjective(lam=lam)
            w = None
            if alpha == 0.0:
                d = xgb.DMatrix(self.Xtr, label=y, qid=self.train.group)
            else:  # XGBoost wants per-group weights with qid: weights and groups go to the objective directly
                w, sizes = 1.0 + alpha * (y == 2), self.train.group_sizes()
                d = xgb.DMatrix(self.Xtr, label=y, weight=w)
                obj = (lambda pwr: lambda predt, _d: pwr(y, predt, w, sizes))(obj)
            self._ctr[key] = xgb.train({**self.params, "base_score": initial_margin(y, w)}, d, self.a.rounds, obj=obj)
        return self._ctr[key]

    def ctr(self, lam: float, alpha: float = 0.0) -> np.ndarray:
        return expit(self.ctr_booster(lam, alpha).predict(self.dte, output_margin=True))

    def clicked_cvr(self) -> np.ndarray:
        """pCVR of the clicked-space CVR booster (the same for every CTR booster)."""
        if self._clicked_cvr is None:
            idx = np.flatnonzero(self.train.y >= 1)
            dcl = xgb.DMatrix(self.Xtr.iloc[idx], label=(self.train.y[idx] == 2).astype(np.float32))
            p = {k: v for k, v in self.params.items() if k != "disable_default_eval_metric"}
            self._clicked_cvr = xgb.train({**p, "objective": "binary:logistic"}, dcl, self.a.rounds).predict(self.dte)
        return self._clicked_cvr


def fit_chain(s: Split, lam: float, alpha: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    return s.ctr(lam, alpha), s.clicked_cvr()


def fit_chain_entire(s: Split, lam: float) -> tuple[np.ndarray, np.ndarray]:
    booster, y = s.ctr_booster(lam), s.train.y
    obj = EntireSpaceCVRObjective(ctr_prob=expit(booster.predict(xgb.DMatrix(s.Xtr), output_margin=True)))
    u0 = initial_margin(y[y >= 1] - 1)  # log-odds of the conversion rate among clicks
    cvr_b = xgb.train({**s.params, "base_score": u0}, xgb.DMatrix(s.Xtr, label=y), s.a.rounds, obj=obj)
    return s.ctr(lam), expit(cvr_b.predict(s.dte, output_margin=True))


def fit_shared(s: Split, lam: float, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    y = s.train.y
    p = {**s.params, "multi_strategy": "multi_output_tree", "num_target": 2, "base_score": initial_margins(y).tolist()}
    b = xgb.train(
        p,
        xgb.DMatrix(s.Xtr, label=y, qid=s.train.group),
        s.a.rounds,
        obj=SharedCTCVRObjective(lam=lam, ctcvr_weight_ctr=beta),
    )
    ctr, cvr, _ = shared_probabilities(b.predict(s.dte, output_margin=True))
    return ctr, cvr


def fit_net(s: Split, model: str, loss: str) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from gbdt_pwiser.neural.training import fit_neural

    torch.set_num_threads(1)
    a = s.a
    m = fit_neural(
        NEURAL[model],
        s.train.X,
        s.train.y,
        s.train.group,
        loss=loss,
        lam=1.0,
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        embedding_dim=a.embedding_dim,
        random_state=s.seed,
        progress=False,
    )
    return m.predict_ctr(s.test.X), m.predict_cvr(s.test.X)


def _fitters(a: argparse.Namespace) -> dict[str, Callable[[Split], tuple[np.ndarray, np.ndarray]]]:
    out: dict[str, Callable[[Split], tuple[np.ndarray, np.ndarray]]] = {
        "chain BCE": lambda s: fit_chain(s, 0.0),
        "chain PWiseR": lambda s: fit_chain(s, 1.0),
        "chain weighted": lambda s: fit_chain(s, 0.0, a.alpha),
        "chain entire BCE": lambda s: fit_chain_entire(s, 0.0),
        "chain entire PWiseR": lambda s: fit_chain_entire(s, 1.0),
        "shared BCE": lambda s: fit_shared(s, 0.0),
        "shared PWiseR": lambda s: fit_shared(s, 1.0),
        "shared PWiseR β=0": lambda s: fit_shared(s, 1.0, 0.0),
    }
    for n in NEURAL:
        out[f"{n} BCE"] = lambda s, _n=n: fit_net(s, _n, "bce")
        out[f"{n} PWiseR"] = lambda s, _n=n: fit_net(s, _n, "pwiser")
    return out


def _score_sets(y: np.ndarray) -> dict[str, tuple[np.ndarray, int, np.ndarray | None]]:
    """metric -> (binary target, score column: 0 pCTR / 1 pCVR / 2 pCTCVR, rows or None)."""
    click, conv = y >= 1, y == 2
    return {
        "click_auc": (click, 0, None),
        "conv_auc_of_pctr": (conv, 0, None),
        "cvr_auc": (conv, 1, click),
        "ctcvr_auc": (conv, 2, None),
    }


def score(
    y: np.ndarray, ctr: np.ndarray, cvr: np.ndarray, draws_counts: list[np.ndarray]
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Each metric on the test rows, and on every bootstrap resample (``draws_counts``: row counts, blocks)."""
    cols = (ctr, cvr, ctr * cvr)
    point, boot = {}, {}
    for m, (target, col, rows) in _score_sets(y).items():
        sel = slice(None) if rows is None else rows
        point[m] = float(auc(target[sel], cols[col][sel]))
        boot[m] = np.concatenate([weighted_auc(target[sel], cols[col][sel], c[:, sel]) for c in draws_counts])
    return point, boot


def _resample_counts(group: np.ndarray, n_resamples: int, seed: int, block: int = 25) -> list[np.ndarray]:
    """Row multiplicities of each bootstrap resample of the test groups, in blocks of resamples."""
    _, codes = np.unique(group, return_inverse=True)
    g = int(codes.max()) + 1
    draws = group_bootstrap_draws(g, n_resamples, seed)
    out = []
    for s in range(0, n_resamples, block):
        d = draws[s : s + block]
        k = d.shape[0]
        c = np.bincount((np.arange(k)[:, None] * g + d).ravel(), minlength=k * g).reshape(k, g)
        out.append(c[:, codes].astype(np.float64))
    return out


def run_one(regime: str, seed: int, a: argparse.Namespace, fitters: dict[str, Callable]) -> tuple[list, dict]:
    s = Split(regime, seed, a)
    y = s.test.y
    counts = _resample_counts(s.test.group, a.n_resamples, 1000 + seed)
    truth = s.test.truth
    info = {
        "n_train": len(s.train),
        "n_test": len(s.test),
        "test_groups": int(s.test.n_groups),
        "test_clicks": int((y >= 1).sum()),
        "test_conversions": int((y == 2).sum()),
    }
    rows, boots = [], {}
    for name in ["truth", *a.models]:
        t = time.perf_counter()
        if name == "truth":
            ctr, cvr = truth["p_click"].to_numpy(), truth["p_cvr"].to_numpy()
        else:
            ctr, cvr = fitters[name](s)
        fit_s = 0.0 if name == "truth" else time.perf_counter() - t
        point, boots[name] = score(y, np.asarray(ctr, np.float64), np.asarray(cvr, np.float64), counts)
        rows.append({"regime": regime, "seed": seed, "model": name, "fit_s": fit_s, **point, **info})
        print(json.dumps(rows[-1]), flush=True)
    return rows, boots


def _paired(
    rows: list[dict[str, Any]],
    boots: dict,
    regime: str,
    seeds: list[int],
    model: str,
    base: str,
    metric: str,
    tail: float,
) -> dict[str, float]:
    """Mean over seeds of AUC(model) − AUC(base), its bootstrap interval and the seeds where it is positive."""
    val = {(r["seed"], r["model"]): r[metric] for r in rows if r["regime"] == regime}
    d = np.array([val[(k, model)] - val[(k, base)] for k in seeds])
    bd = np.mean([boots[(regime, k)][model][metric] - boots[(regime, k)][base][metric] for k in seeds], axis=0)
    bd = bd[np.isfinite(bd)]
    low, high = np.percentile(bd, [tail, 100 - tail]) if bd.size else (np.nan, np.nan)
    return {"delta": float(np.mean(d)), "low": float(low), "high": float(high), "seeds_better": int(np.sum(d > 0))}


def pwiser_pairs(models: list[str]) -> list[tuple[str, str]]:
    """(model with PWiseR, the same model with BCE) for every family run with both losses."""
    return [
        (m, m[: -len("PWiseR")] + "BCE")
        for m in models
        if m.endswith(" PWiseR") and m[: -len("PWiseR")] + "BCE" in models
    ]


def summarise(
    rows: list[dict[str, Any]],
    boots: dict[tuple[str, int], dict[str, dict[str, np.ndarray]]],
    models: list[str],
    confidence: float = 0.95,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per regime and model: mean over seeds, seed SD and the difference to ``chain BCE`` with its interval;
    and per regime and family the difference PWiseR − BCE with its interval."""
    tail = 50.0 * (1.0 - confidence)
    out, within = [], []
    for regime in dict.fromkeys(r["regime"] for r in rows):
        seeds = [r["seed"] for r in rows if r["regime"] == regime and r["model"] == "truth"]
        for model in ["truth", *models]:
            sel = {r["seed"]: r for r in rows if r["regime"] == regime and r["model"] == model}
            s: dict[str, Any] = {
                "regime": regime,
                "model": model,
                "n_seeds": len(sel),
                "fit_s": float(np.mean([r["fit_s"] for r in sel.values()])),
            }
            for m in METRICS:
                vals = np.array([sel[k][m] for k in seeds])
                s[m] = float(np.mean(vals))
                s[m + "_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
                if REFERENCE in models and model != REFERENCE:
                    p = _paired(rows, boots, regime, seeds, model, REFERENCE, m, tail)
                    s.update({f"{m}_{k}": v for k, v in p.items()})
            out.append(s)
        for model, base in pwiser_pairs(models):
            w: dict[str, Any] = {"regime": regime, "model": model, "base": base}
            for m in METRICS:
                w.update({f"{m}_{k}": v for k, v in _paired(rows, boots, regime, seeds, model, base, m, tail).items()})
            within.append(w)
    return out, within


def _delta_cell(s: dict[str, Any], m: str, n_seeds: int) -> str:
    return f"{s[m + '_delta']:+.4f} [{s[m + '_low']:+.4f}, {s[m + '_high']:+.4f}] {s[m + '_seeds_better']}/{n_seeds}"


def render(payload: dict[str, Any]) -> str:
    """The Markdown of ``verdict.md`` (and of the verdict block of ``docs/evidence.md``) from the JSON payload."""
    summary, n_seeds = payload["summary"], len(payload["args"]["seeds"])
    lines = [payload["conditions"], ""]
    for regime in dict.fromkeys(s["regime"] for s in summary):
        data = [r for r in payload["results"] if r["regime"] == regime and r["model"] == "truth"]
        conv = [r["test_conversions"] for r in data]
        lines += [
            f"**{regime}** ({'simulator defaults' if regime == 'sparse' else 'ctr=0.10, cvr=0.20'}; "
            f"~{data[0]['n_train']} train rows per seed, test conversions per seed {conv}). "
            f"AUC, mean over seeds, and Δ vs `{REFERENCE}` [95 % CI] (seeds with Δ > 0 of {n_seeds}):",
            "",
            "| model | " + " | ".join(HEADERS) + " | fit s (loaded) |",
            "|---|" + "---|" * (len(HEADERS) + 1),
        ]
        for s in (s for s in summary if s["regime"] == regime):
            cells = []
            for m in METRICS:
                c = f"{s[m]:.4f}"
                if m + "_delta" in s and s["model"] != "truth":
                    c += f" ({_delta_cell(s, m, n_seeds)})"
                cells.append(c)
            fit = "–" if s["model"] == "truth" else f"{s['fit_s']:.1f}"
            lines.append(f"| {s['model']} | " + " | ".join(cells) + f" | {fit} |")
        lines.append("")
        within = [w for w in payload.get("within", []) if w["regime"] == regime]
        if within:
            lines += [
                f"PWiseR − BCE within each model, {regime} [95 % CI] (seeds with Δ > 0 of {n_seeds}):",
                "",
                "| model | " + " | ".join(f"Δ {h}" for h in HEADERS) + " |",
                "|---|" + "---|" * len(HEADERS),
            ]
            for w in within:
                name = w["model"][: -len(" PWiseR")]
                lines.append(f"| {name} | " + " | ".join(_delta_cell(w, m, n_seeds) for m in METRICS) + " |")
            lines.append("")
    lines.append(
        "`truth`: the simulator's true probabilities, the ceiling. The interval is a paired percentile bootstrap "
        f"over test requests ({payload['args']['n_resamples']} resamples, stratified by seed) of the mean over "
        "seeds of the per-seed difference; an interval that contains 0 shows no effect at this size. "
        "`chain weighted` and `chain PWiseR` share the CVR booster of `chain BCE` (clicked space), so their "
        "CVR AUC equals its own (its fit time is in `chain BCE`'s). Fit times are on a loaded 2-core machine "
        "shared with other jobs (seed to seed they vary several-fold): indicative only."
    )
    return "\n".join(lines) + "\n"


def write_page(md: str, page: Path = PAGE) -> None:
    """Rewrite the verdict block of ``page`` (``docs/evidence.md``) with ``md``."""
    write_between(page, BEGIN, END, md)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sparse-requests", type=int, default=6000)
    ap.add_argument("--dense-requests", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(ALL_MODELS))
    ap.add_argument("--alpha", type=float, default=1.0, help="conversion weight of `chain weighted`")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--eta", type=float, default=0.1)
    ap.add_argument("--max-bin", type=int, default=64)
    ap.add_argument("--nthread", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--embedding-dim", type=int, default=8)
    ap.add_argument("--n-resamples", type=int, default=200)
    ap.add_argument("--test-size", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--docs", action="store_true", help="also rewrite the verdict tables of docs/evidence.md")
    ap.add_argument("--smoke", action="store_true", help="a tiny run (seconds), for the tests")
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="fit nothing: re-render verdict.md (and, with --docs, the docs page) from verdict.json",
    )
    a = ap.parse_args(argv)
    if a.render_only:
        payload = json.loads((a.out / "verdict.json").read_text())
        md = render(payload)
        (a.out / "verdict.md").write_text(md)
        if a.docs:
            write_page(md)
        print(md)
        return payload
    if a.smoke:
        a.sparse_requests, a.dense_requests, a.seeds, a.rounds, a.depth, a.nthread = 300, 150, [0, 1], 3, 3, 1
        a.epochs, a.n_resamples = 1, 20
    if REFERENCE not in a.models:
        a.models = [REFERENCE, *a.models]
    fitters = _fitters(a)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    boots: dict[tuple[str, int], dict[str, dict[str, np.ndarray]]] = {}
    for regime in a.regimes:
        for seed in a.seeds:
            r, b = run_one(regime, seed, a, fitters)
            rows += r
            boots[(regime, seed)] = b
    summary, within = summarise(rows, boots, a.models)
    conditions = (
        f"Simulator `make_ad_log`, seeds {a.seeds} (each a new log), {1 - a.test_size:g}/{a.test_size:g} split by "
        f"request; sparse: {a.sparse_requests} requests, dense: {a.dense_requests} requests. Trees: XGBoost hist, "
        f"{a.rounds} rounds per booster, depth {a.depth}, eta {a.eta:g}, max_bin {a.max_bin}, categorical columns "
        f"as codes; nets: {a.epochs} epochs, batch {a.batch_size}, lr {a.lr:g}, embedding {a.embedding_dim}, "
        f"1 torch thread; PWiseR λ = 1, margins 0.02/0.02, squared hinge (the defaults); `chain weighted`: "
        f"α = {a.alpha:g}. Total wall time {time.perf_counter() - t0:.0f} s (loaded machine)."
    )
    payload = {
        "benchmark": "verdict",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "conditions": conditions,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "summary": summary,
        "within": within,
        "results": rows,
    }
    md = render(payload)
    print(md)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "verdict.json").write_text(json.dumps(payload, indent=1, default=float))
    (a.out / "verdict.md").write_text(md)
    if a.docs and not a.smoke:
        write_page(md)
    return payload


if __name__ == "__main__":
    main()
