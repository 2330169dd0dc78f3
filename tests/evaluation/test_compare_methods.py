"""``compare --evidence``: the competitors of PWiseR over their knobs, error bars, trade-off plots, pair counts."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from gbdt_pwiser.cli import main
from gbdt_pwiser.evaluation import METHODS, bootstrap_sd, pair_counts, support_warning

SMALL = [
    "compare",
    "--requests",
    "1500",
    "--test-size",
    "0.5",
    "--n-estimators",
    "8",
    "--max-depth",
    "3",
    "--quiet",
    "--bootstrap",
    "20",
    "--sweep-lam",
    "0,1",
    "--sweep-alpha",
    "0,2",
]
PNG = b"\x89PNG\r\n\x1a\n"


def _run(args):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(args)
    return rc, buf.getvalue()


@pytest.fixture(scope="module")
def evidence_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence")
    rc, text = _run([*SMALL, "--no-sweep", "--evidence", "--seeds", "0,1", "--out", str(out)])
    return rc, text, out, json.loads((out / "results.json").read_text())


def test_every_method_runs_and_json_has_curves_with_error_bars(evidence_run):
    rc, text, _, summary = evidence_run
    assert rc == 0
    ev = summary["evidence"]
    assert ev["methods"] == ["pwiser", "weighted", "ranker", "shared"] and ev["seeds"] == [0, 1]
    curves = ev["curves"]
    assert set(curves) == {METHODS[m].label for m in ev["methods"]}
    knobs = {label: [p["value"] for p in pts] for label, pts in curves.items()}
    assert knobs[METHODS["pwiser"].label] == [0.0, 1.0] == knobs[METHODS["shared"].label]
    assert knobs[METHODS["weighted"].label] == [0.0, 2.0] and knobs[METHODS["ranker"].label] == [None]
    for pts in curves.values():
        for p in pts:
            assert p["n_seeds"] == 2
            for k in ("ctr_auc", "ctr_conv_auc", "ctcvr_auc"):
                assert 0.0 <= p[k] <= 1.0 and np.isfinite(p[f"{k}_sd"]) and p[f"{k}_sd"] >= 0
    # λ = 0 of the PWiseR chain and α = 0 of weighted BCE are the same BCE chain
    bce = curves[METHODS["pwiser"].label][0]
    assert curves[METHODS["weighted"].label][0]["ctr_auc"] == bce["ctr_auc"]
    assert "SD over seeds 0,1" in ev["error_bars"] and "ranking objective" in text


def test_tradeoff_plots_are_pngs(evidence_run):
    _, _, out, summary = evidence_run
    names = sorted(p.rsplit("/", 1)[-1] for p in summary["evidence"]["plots"])
    assert names == ["tradeoff_conversion.png", "tradeoff_ctcvr.png"]
    for name in names:
        assert (out / name).read_bytes()[:8] == PNG


def test_default_compare_runs_no_evidence_but_prints_the_pairs(tmp_path):
    rc, text = _run([*SMALL, "--no-sweep", "--no-plots", "--out", str(tmp_path)])
    assert rc == 0 and "PWiseR pairs in the test part:" in text
    summary = json.loads((tmp_path / "results.json").read_text())
    assert "evidence" not in summary and summary["data"]["test_pairs"]["groups"] == summary["data"]["test_groups"]


def test_methods_subset_one_seed_uses_the_group_bootstrap(tmp_path):
    rc, _ = _run(
        [*SMALL, "--no-sweep", "--methods", "weighted,ranker", "--backend", "lightgbm", "--out", str(tmp_path)]
    )
    assert rc == 0
    ev = json.loads((tmp_path / "results.json").read_text())["evidence"]
    assert ev["methods"] == ["weighted", "ranker"] and "bootstrap" in ev["error_bars"]
    assert all(np.isfinite(p["ctr_auc_sd"]) for pts in ev["curves"].values() for p in pts)


def test_shared_is_skipped_with_a_note_on_lightgbm(tmp_path):
    rc, text = _run(
        [
            *SMALL,
            "--no-sweep",
            "--no-plots",
            "--methods",
            "shared,ranker",
            "--backend",
            "lightgbm",
            "--bootstrap",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0 and "shared booster skipped" in text
    assert json.loads((tmp_path / "results.json").read_text())["evidence"]["methods"] == ["ranker"]


def test_bad_method_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--methods", "pwiser,magic"])
    assert "unknown method 'magic'" in capsys.readouterr().err


def _naive_pairs(y, group):
    p1 = p2 = 0
    with_pairs = set()
    for g in np.unique(group):
        for _ in np.flatnonzero((group == g) & (y == 2)):  # each conversion pairs with every row of its group
            for j in np.flatnonzero(group == g):
                if y[j] == 1:
                    p1 += 1
                    with_pairs.add(g)
                elif y[j] == 0:
                    p2 += 1
                    with_pairs.add(g)
    return p1, p2, len(with_pairs) / np.unique(group).size


@pytest.mark.parametrize("seed", range(5))
def test_pair_counts_equal_a_naive_count(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.choice([0, 1, 2], size=n, p=[0.7, 0.2, 0.1])
    group = rng.choice([f"g{k}" for k in range(40)], size=n)
    c = pair_counts(y, group)
    p1, p2, share = _naive_pairs(y, group)
    assert (c["pairs_click_only"], c["pairs_no_click"]) == (p1, p2)
    assert c["share_groups_with_pairs"] == pytest.approx(share)
    assert c["click_only_partners_per_conversion"] == pytest.approx(p1 / np.count_nonzero(y == 2))


def test_support_warning():
    assert "test conversions" in support_warning({"conversions": 10, "click_only_partners_per_conversion": 5.0})
    assert "click-only partners" in support_warning({"conversions": 500, "click_only_partners_per_conversion": 0.1})
    assert support_warning({"conversions": 500, "click_only_partners_per_conversion": 3.0}) is None


def test_bootstrap_sd_of_the_point_metrics():
    rng = np.random.default_rng(0)
    y = rng.choice([0, 1, 2], size=400, p=[0.6, 0.25, 0.15])
    pctr, pcvr = rng.random(400), rng.random(400)
    pred = {"p_ctr": pctr, "p_cvr": pcvr, "p_ctcvr": pctr * pcvr}
    sd = bootstrap_sd(pred, y, np.repeat(np.arange(40), 10), 50, 0)
    assert set(sd) == {"ctr_auc", "ctr_conv_auc", "ctcvr_auc"}
    assert all(0 < v < 0.2 for v in sd.values())
    assert sd == bootstrap_sd(pred, y, np.repeat(np.arange(40), 10), 50, 0)  # seeded
