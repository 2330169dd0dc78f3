"""Which settings distort calibration, and whether ``calibration=`` repairs it (issue #24).

pCTCVR multiplies the bid, so predicted rates must match observed ones. This
benchmark fits ``CTCVRClassifier`` in several settings — plain BCE (λ = 0), the
default PWiseR (λ = 1, margins 0.02), a distorting PWiseR (λ = 4, margins 0.3),
the entire-space CVR booster, the shared two-output booster and
conversion-weighted BCE (α = 1) — each without and with
``calibration="isotonic"`` (3-fold cross-fitted by group), on simulated logs in
the dense regime, and reports on held-out requests:

* predicted / observed clicks (pCTR) and conversions (pCTCVR)
  (:func:`gbdt_pwiser.metrics.calibration_ratio`);
* the expected calibration error of both
  (:func:`gbdt_pwiser.metrics.expected_calibration_error`, 10 equal-weight bins);
* the click AUC of pCTR and the CTCVR AUC, to show that the maps cost no ranking.

Means over seeds (each seed a new log). ``--docs`` rewrites the table of
``docs/calibration.md``; ``--smoke`` is a tiny run for the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, load_average, machine, write_between

from gbdt_pwiser import CTCVRClassifier
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.metrics import auc, calibration_ratio, expected_calibration_error

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "calibration.md"
BEGIN, END = "<!-- calibration-table:begin -->", "<!-- calibration-table:end -->"

#: setting -> estimator parameters (besides the shared tree parameters)
SETTINGS: dict[str, dict[str, Any]] = {
    "BCE (λ=0)": {"lam": 0.0},
    "PWiseR λ=1 (default)": {"lam": 1.0},
    "PWiseR λ=4, margins 0.3": {"lam": 4.0, "margin_click_only": 0.3, "margin_no_click": 0.3},
    "entire-space CVR (λ=1)": {"lam": 1.0, "cvr_space": "entire"},
    "shared booster (λ=1)": {"lam": 1.0, "structure": "shared"},
    "conversion-weighted BCE (α=1)": {"lam": 0.0, "conversion_weight": 1.0},
}
METRICS = ("ctr_ratio", "ctcvr_ratio", "ctr_ece", "ctcvr_ece", "ctr_auc", "ctcvr_auc")


def measure(model: CTCVRClassifier, X: Any, y: np.ndarray) -> dict[str, float]:
    """Calibration and ranking of a fitted model on held-out rows with funnel labels ``y``."""
    p_ctr, p_ctcvr = model.predict_ctr(X), model.predict_ctcvr(X)
    click, conv = (y >= 1).astype(np.float64), (y == 2).astype(np.float64)
    return {
        "ctr_ratio": calibration_ratio(click, p_ctr),
        "ctcvr_ratio": calibration_ratio(conv, p_ctcvr),
        "ctr_ece": expected_calibration_error(click, p_ctr),
        "ctcvr_ece": expected_calibration_error(conv, p_ctcvr),
        "ctr_auc": auc(click, p_ctr),
        "ctcvr_auc": auc(conv, p_ctcvr),
    }


def run(a: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    t0, load0 = time.perf_counter(), load_average()
    tree = {"n_estimators": a.rounds, "max_depth": a.depth, "learning_rate": a.eta, "n_jobs": a.nthread}
    for seed in a.seeds:
        log = make_ad_log(a.requests, ctr=a.ctr, cvr=a.cvr, random_state=seed)
        train, test = train_test_split_by_group(log, test_size=a.test_size, random_state=seed)
        test = test.align_categories(train)
        y = np.asarray(test.y)
        for name, params in SETTINGS.items():
            for calibration in (None, "isotonic"):
                model = CTCVRClassifier(**tree, **params, calibration=calibration, random_state=seed)
                model.fit(train.X, train.y, group=train.group)
                rows.append(
                    {
                        "setting": name,
                        "calibration": calibration or "none",
                        "seed": seed,
                        "test_clicks": int((y >= 1).sum()),
                        "test_conversions": int((y == 2).sum()),
                        **measure(model, test.X, y),
                    }
                )
    summary = []
    for name in SETTINGS:
        for calibration in ("none", "isotonic"):
            sel = [r for r in rows if r["setting"] == name and r["calibration"] == calibration]
            summary.append(
                {
                    "setting": name,
                    "calibration": calibration,
                    **{m: float(np.mean([r[m] for r in sel])) for m in METRICS},
                }
            )
    conv = [r["test_conversions"] for r in rows if r["setting"] == next(iter(SETTINGS)) and r["calibration"] == "none"]
    conditions = (
        f"Simulator `make_ad_log({a.requests}, ctr={a.ctr}, cvr={a.cvr})`, seeds {a.seeds} (each a new log), "
        f"{1 - a.test_size:g}/{a.test_size:g} split by request, {int(np.mean(conv))} test conversions per seed on "
        f"average; XGBoost, {a.rounds} rounds per booster, depth {a.depth}, eta {a.eta:g}, {a.nthread} threads; "
        f"isotonic maps cross-fitted on 3 folds of the training requests (`calibration_cv=3`, the default)"
    )
    return {
        "benchmark": "calibration",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "conditions": conditions,
        "rows": rows,
        "summary": summary,
        "seconds": round(time.perf_counter() - t0, 1),
        "load_average": [load0, load_average()],
    }


def render(payload: dict[str, Any]) -> str:
    """The Markdown table of the summary (one line per setting and calibration)."""
    lines = [
        "| setting | calibration | pCTR / clicks | pCTCVR / conversions | ECE pCTR | ECE pCTCVR | CTR AUC "
        "| CTCVR AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in payload["summary"]:
        lines.append(
            f"| {s['setting']} | {s['calibration']} | {s['ctr_ratio']:.3f} | {s['ctcvr_ratio']:.3f} | "
            f"{s['ctr_ece']:.4f} | {s['ctcvr_ece']:.5f} | {s['ctr_auc']:.4f} | {s['ctcvr_auc']:.4f} |"
        )
    load = payload["load_average"]
    lines += [
        "",
        f"{payload['conditions']}. Means over seeds; measured {payload['date']} in {payload['seconds']} s "
        f"(load average {load[0]} before, {load[1]} after).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--ctr", type=float, default=0.1)
    ap.add_argument("--cvr", type=float, default=0.3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--eta", type=float, default=0.1)
    ap.add_argument("--nthread", type=int, default=2)
    ap.add_argument("--test-size", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--docs", action="store_true", help="also rewrite the table of docs/calibration.md")
    ap.add_argument("--smoke", action="store_true", help="a tiny run (seconds), for the tests")
    a = ap.parse_args(argv)
    if a.smoke:
        a.requests, a.seeds, a.rounds, a.depth, a.nthread = 200, [0], 3, 3, 1
    payload = run(a)
    md = render(payload)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "calibration.json").write_text(json.dumps(payload, indent=1))
    (a.out / "calibration.md").write_text(md)
    if a.docs:
        write_between(DOCS_PAGE, BEGIN, END, md)
    print(md)
    return payload


if __name__ == "__main__":
    main()
