"""``compare --evidence``: every competitor of PWiseR over its knob and seeds (the evaluation layer), as text."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation import METHODS, Model, fit_plan, run_comparison
from ._output import progress

__all__ = ["TRADEOFF_PLOTS", "evidence_methods", "evidence_models", "format_evidence", "run_evidence"]

#: The evidence run's plots, in --out.
TRADEOFF_PLOTS = ("tradeoff_conversion.png", "tradeoff_ctcvr.png")


def evidence_methods(args: argparse.Namespace) -> list[str]:
    """The methods of the evidence run (empty: no evidence run)."""
    from ._options import EVIDENCE_METHODS

    if args.methods:
        return list(args.methods)
    return list(EVIDENCE_METHODS) if args.evidence else []


def evidence_models(args: argparse.Namespace) -> list[Model]:
    """Each method of the evidence run at each value of its knob (``--sweep-lam``, ``--sweep-alpha``)."""
    out = []
    for name in evidence_methods(args):
        knob = METHODS[name].knob
        values = (
            [None]
            if knob is None
            else sorted({float(v) for v in (args.sweep_alpha if knob == "alpha" else args.sweep_lam)})
        )
        out += [Model(name, v) for v in values]
    return out


def run_evidence(args: argparse.Namespace, log: Any, params: dict[str, Any], out: Path, plots: bool) -> dict[str, Any]:
    """Fit every (method, knob value, seed); mean ± SD points per method, the plots' paths and notes."""
    models = evidence_models(args)
    seeds = list(args.seeds)
    bar = progress(args.quiet, total=len(fit_plan(models)) * len(seeds), unit="fit", desc="evidence")
    try:
        result = run_comparison(
            log,
            models=models,
            seeds=seeds,
            test_size=args.test_size,
            params={**params, "verbose": False},
            calibration=args.calibration,
            baseline=None,
            bootstrap=args.bootstrap,
            progress=bar,
        )
    finally:
        bar.close()
    summary = result.summary()
    curves = result.curves(summary)
    files = []
    if plots:
        for path in result.save_plots(out, TRADEOFF_PLOTS, title=args.backend):
            files.append(str(path))
    present = list(dict.fromkeys(m.method for m in result.models))
    return {
        "methods": present,
        "seeds": seeds,
        "error_bars": result.error_bars(),
        "curves": curves,
        "plots": files,
        "notes": result.notes,
    }


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
            lines.append(
                f"{label:<38} {knob:>10} {cell(p, 'ctr_auc'):>17} {cell(p, 'ctr_conv_auc'):>17} "
                f"{cell(p, 'ctcvr_auc'):>17}"
            )
    lines.append(f"error: {ev['error_bars']}")
    lines.extend(ev["notes"])
    return "\n".join(lines)
