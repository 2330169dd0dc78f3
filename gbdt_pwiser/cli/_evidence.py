"""``compare --evidence``: every competitor of PWiseR over its knob and seeds, and the trade-off plots."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._data import UserError, make_model, split_log
from ._output import plot_tradeoff, progress

__all__ = ["TRADEOFF_PLOTS", "evidence_methods", "format_evidence", "run_evidence"]

#: The evidence run's plots: (metric on the y axis, file name in --out).
TRADEOFF_PLOTS = (("ctr_conv_auc", "tradeoff_conversion.png"), ("ctcvr_auc", "tradeoff_ctcvr.png"))


def evidence_methods(args: argparse.Namespace) -> list[str]:
    """The methods of the evidence run (empty: no evidence run)."""
    from ._options import EVIDENCE_METHODS

    if args.methods:
        return list(args.methods)
    return list(EVIDENCE_METHODS) if args.evidence else []


def _values(args: argparse.Namespace, name: str) -> list[float | None]:
    from ..evidence import METHODS

    knob = METHODS[name].knob
    if knob is None:
        return [None]
    raw = args.sweep_alpha if knob == "alpha" else args.sweep_lam
    return sorted(set(float(v) for v in raw))


def run_evidence(args: argparse.Namespace, log: Any, out: Path, plots: bool) -> dict[str, Any]:
    """Fit every (method, knob value, seed); mean ± SD points per method, the plots' paths and notes."""
    from ..evidence import METHODS, bootstrap_sd, evaluate_point, summarise

    names = evidence_methods(args)
    notes: list[str] = []
    if "shared" in names and args.backend != "xgboost":
        names.remove("shared")
        notes.append(f"shared booster skipped: multi-output trees need --backend xgboost (got {args.backend})")
    jobs = [(n, v) for n in names for v in _values(args, n)]
    seeds = list(args.seeds)
    bar = progress(args.quiet, total=len(jobs) * len(seeds), unit="fit", desc="evidence")
    raw: dict[tuple[str, float | None], list[dict[str, float]]] = {job: [] for job in jobs}
    for seed in seeds:
        train, test = split_log(log, args.test_size, seed)

        def make(lam: float, _seed: int = seed, **kw: Any) -> Any:
            return make_model(args, lam, random_state=_seed, verbose=False, **kw)

        base = make(0.0).fit(train.X, train.y, group=train.group)
        base_pred = (base.predict_ctr(test.X), base.predict_cvr(test.X))
        for name, value in jobs:
            bar.set_description(f"evidence: {name}" + ("" if value is None else f" {value:g}"))
            if name in ("pwiser", "weighted") and value == 0.0:
                pctr, pcvr = base_pred  # λ = 0 and α = 0 are the BCE chain itself
            else:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        pctr, pcvr = METHODS[name].fit(make, train, test, value, base)
                except ValueError as exc:
                    raise UserError(f"{name}: {exc}") from exc
            point = evaluate_point(pctr, pcvr, test.y)
            if len(seeds) == 1 and args.bootstrap:
                point["bootstrap_sd"] = bootstrap_sd(pctr, pcvr, test.y, test.group, min(args.bootstrap, 100), seed)
            raw[(name, value)].append(point)
            bar.update()
    bar.close()
    curves: dict[str, list[dict[str, Any]]] = {}
    for name, value in jobs:
        pts = raw[(name, value)]
        s = summarise(pts)
        if len(seeds) == 1 and "bootstrap_sd" in pts[0]:
            s.update({f"{k}_sd": v for k, v in pts[0]["bootstrap_sd"].items()})
        curves.setdefault(METHODS[name].label, []).append(
            {"method": name, "knob": METHODS[name].knob, "value": value, **s, "n_seeds": len(seeds)})
    error = ("SD over seeds " + ",".join(map(str, seeds)) if len(seeds) > 1
             else f"SD over {min(args.bootstrap, 100)} bootstrap resamples of test groups" if args.bootstrap
             else "no error bars (one seed, --bootstrap 0)")
    files = []
    if plots:
        for key, fname in TRADEOFF_PLOTS:
            plot_tradeoff(curves, key, out / fname, f"{args.backend}: trade-off on held-out groups; bars: {error}")
            files.append(str(out / fname))
    return {"methods": names, "seeds": seeds, "error_bars": error, "curves": curves, "plots": files, "notes": notes}


def format_evidence(ev: dict[str, Any]) -> str:
    """A plain table of the evidence points: method, knob, click AUC, conversion AUC of pCTR, CTCVR AUC."""
    head = f"{'method':<38} {'knob':>10} {'click AUC':>17} {'conv AUC of pCTR':>17} {'CTCVR AUC':>17}"
    lines = [head, "-" * len(head)]

    def cell(p: dict[str, Any], k: str) -> str:
        sd = p.get(f"{k}_sd", float("nan"))
        return f"{p[k]:.4f}" + ("" if not np.isfinite(sd) else f" ± {sd:.4f}")

    for label, pts in ev["curves"].items():
        for p in pts:
            knob = "" if p["knob"] is None else f"{p['knob']}={p['value']:g}"
            lines.append(f"{label:<38} {knob:>10} {cell(p, 'ctr_auc'):>17} {cell(p, 'ctr_conv_auc'):>17} "
                         f"{cell(p, 'ctcvr_auc'):>17}")
    lines.append(f"error: {ev['error_bars']}")
    lines.extend(ev["notes"])
    return "\n".join(lines)
