"""A tiny smoke run of the benchmark scripts: the figures they return and print have the promised shape.

Speed itself is measured in benchmarks/, not here; a smoke run writes no result file.
"""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


@pytest.fixture
def no_results(tmp_path, monkeypatch):
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    yield tmp_path / "results"
    assert not (tmp_path / "results").exists()  # --smoke never writes a result file


def _lines(text, pattern):
    return [ln for ln in text.splitlines() if re.match(pattern, ln)]


def test_bench_objective_smoke(no_results, capsys):
    import bench_objective

    out = bench_objective.main(["--smoke"])
    printed = capsys.readouterr().out
    assert set(out["regimes"]) == {"sparse", "dense"} and out["threads"] == 1 and out["bandwidth_gbs"] > 0
    for res in out["regimes"].values():
        assert res["rows"] == 20_000 and res["active_groups"] > 0
        med = res["median_s"]
        assert set(med) == set(bench_objective.LABELS) and all(v > 0 for v in med.values())
        for k, v in med.items():
            assert res["over_numpy"][k] == pytest.approx(v / med["numpy"])
        assert res["floor_bytes_per_row"]["floor round"] == 21
        assert res["floors_s"]["floor call"] > res["floors_s"]["floor round"] > 0
    dense, sparse = out["regimes"]["dense"], out["regimes"]["sparse"]
    assert dense["conversions"] > sparse["conversions"]
    assert len(_lines(printed, r"(sparse|dense) +(NumPy|per round|whole)")) == 2 * len(bench_objective.LABELS)
    table = bench_objective.markdown(out)
    assert "| per round, exact |" in table and "≤ 1.0×" in table and "physical floor, one round" in table


def test_bench_fit_smoke(no_results, capsys):
    import bench_fit

    out = bench_fit.main(["--smoke"])
    printed = capsys.readouterr().out
    assert set(out) == {"xgboost", "lightgbm"}
    for backend, by_regime in out.items():
        assert set(by_regime) == {"sparse", "dense"}
        res = by_regime["dense"]
        assert set(res) == {"3000"}
        variants = res["3000"]
        assert len(variants) >= 2
        for r in variants.values():
            assert r["median_s"] > 0 and len(r["times_s"]) == 1
            assert r["ratio_min"] <= r["ratio_median"] <= r["ratio_max"]
        ref = [r for r in variants.values() if r["ratio_median"] == 1.0]
        assert ref, "the native reference has ratio 1"
        assert len(_lines(printed, rf"{backend} dense n=3000: ")) == len(variants)


def test_bench_memory_smoke(no_results, capsys):
    import bench_memory

    out = bench_memory.main(["--smoke"])
    printed = capsys.readouterr().out
    assert (out["rows"], out["rounds"]) == (3000, 2)
    for backend in ("xgboost", "lightgbm"):
        r = out["results"][backend]
        assert all(r[k] > 0 for k in ("native", "native + one Numba call", "exact", "k=4", "data_loaded_mib"))
        # the floor's process ran compiled Numba code, the native one did not: it holds more
        assert r["native + one Numba call"] > r["native"]
        assert r["exact_over_native"] == pytest.approx(r["exact"] / r["native"])
        assert r["k=4_over_native"] == pytest.approx(r["k=4"] / r["native"])
        assert len(_lines(printed, rf"{backend}: peak RSS native \d+ MiB, exact \d+ MiB")) == 1


def test_bench_startup_smoke(no_results, capsys):
    import bench_startup

    out = bench_startup.main(["--smoke"])
    printed = capsys.readouterr().out
    assert set(out["runs"]) == set(bench_startup.PROGRAMS) == {"grad_hess", "xgb.train", "CTCVRClassifier"}
    for prog, runs in out["runs"].items():
        assert [len(runs[k]) for k in ("cold", "warm")] == [1, 1]
        for kind in ("cold", "warm"):
            best = out["best"][prog][kind]
            assert set(best) == (
                {"import_s", "first_s", "second_s"} if prog == "grad_hess" else {"import_s", "first_s"}
            )
            assert all(v > 0 for v in best.values())
            assert len(_lines(printed, rf"{prog} +{kind} cache: import \d+\.\d\d s, first \d+\.\d\d s")) == 1
        # the warm process loads the kernels the cold one compiled
        assert out["best"][prog]["warm"]["first_s"] < out["best"][prog]["cold"]["first_s"]


def test_bench_fit_gap_smoke(no_results, capsys):
    import bench_fit_gap

    out = bench_fit_gap.main(["--smoke"])  # raises if a replayed fit grew a different model
    printed = capsys.readouterr().out
    assert set(out) == {"xgboost", "lightgbm"}
    for r in out.values():
        assert r["threads"] == 2 and set(r["rows"]) == {"NumPy BCE", "PWiseR exact", "PWiseR k=4", "PWiseR λ=0"}
        # the control's premise: a BCE custom objective grows native's trees, so replaying it
        # measures the booster's custom-objective path alone
        assert r["rows"]["NumPy BCE"]["nodes"] == r["native_nodes"] > 0
        assert r["rows"]["PWiseR exact"]["nodes"] != r["native_nodes"]
        for name, v in r["rows"].items():
            ref = "NumPy BCE" if name == "PWiseR λ=0" else f"replay {name}"
            assert v["reference"] == ref and len(r["times_s"][name]) == len(r["times_s"][ref]) == 1
            ref_s = r["rows"]["NumPy BCE"]["fit_s"] if name == "PWiseR λ=0" else v["replay_s"]
            assert v["over_reference"] == pytest.approx(v["fit_s"] / ref_s)
            assert ("goal" in v) == (name != "NumPy BCE") and v["cpu_s"] > 0
            # each objective's calls timed inside its fits: some time, less than the fit, and a replay
            # (no computation) spends less in its calls than the objective it replays
            assert 0 < v["timed_calls_s"] < v["fit_s"]
            if "replay_s" in v:
                assert v["objective_s"] == pytest.approx(v["fit_s"] - v["replay_s"])
                assert v["replay_timed_calls_s"] < v["timed_calls_s"]
            assert len(_lines(printed, rf"\| {re.escape(name)} \| \d+\.\d{{3}} \| \d+\.\d{{3}}×")) == 2


def test_performance_tables_render_from_results(tmp_path, monkeypatch):
    import common
    import run_all

    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert "No results yet" in run_all.tables()
    common.write_result(
        "startup",
        {
            "best": {
                "grad_hess": {
                    "cold": {"import_s": 1, "first_s": 5, "second_s": 0.01},
                    "warm": {"import_s": 1, "first_s": 0.5, "second_s": 0.01},
                },
                "xgb.train": {"cold": {"import_s": 2, "first_s": 6}, "warm": {"import_s": 2, "first_s": 0.4}},
            }
        },
    )
    text = run_all.tables()
    assert "| grad_hess | warm | 1.00 | 0.50 | 10.0 | ≤ 1 s met |" in text
    assert "| xgb.train | cold | 2.00 | 6.00 |  | ≤ 5 s **missed** |" in text
    page = tmp_path / "performance.md"
    page.write_text(f"a\n{run_all.BEGIN}\nold\n{run_all.END}\nb\n")
    run_all.write_page(page)
    assert page.read_text() == f"a\n{run_all.BEGIN}\n{text}\n{run_all.END}\nb\n"


def test_docs_performance_tables_are_the_benchmarks():
    """docs/performance.md's results block is exactly what run_all.py renders from benchmarks/results/*.json."""
    import run_all

    text = run_all.PAGE.read_text()
    block = text[text.index(run_all.BEGIN) + len(run_all.BEGIN) : text.index(run_all.END)]
    assert block == "\n" + run_all.tables() + "\n"


def test_bench_evidence_smoke(no_results, capsys):
    import bench_evidence

    out = bench_evidence.main(["--smoke"])
    printed = capsys.readouterr().out
    assert set(out["regimes"]) == {"sparse", "dense"} and "seeds [0]" in out["conditions"]
    for r in out["regimes"].values():
        assert {k.split()[0] for k in r["points"]} == set(bench_evidence.COMPETITORS)
        assert all(0.0 <= p["ctr_auc"] <= 1.0 for p in r["points"].values())
    assert len(_lines(printed, r"\| (pwiser|weighted|ranker|shared)")) == 2 * 10


def test_bench_verdict_smoke(tmp_path, capsys):
    import json

    pytest.importorskip("torch")  # the neural baselines (SharedBottom, ESMM) need the torch extra

    import bench_verdict

    models = [
        "chain PWiseR",
        "chain weighted",
        "chain entire PWiseR",
        "shared PWiseR",
        "shared PWiseR β=0",
        "SharedBottom PWiseR",
        "ESMM BCE",
    ]
    out = bench_verdict.main(["--smoke", "--out", str(tmp_path), "--models", *models])
    printed = capsys.readouterr().out
    assert {r["model"] for r in out["results"]} == {"truth", "chain BCE", *models}  # the reference is added
    assert {(r["regime"], r["seed"]) for r in out["results"]} == {(g, s) for g in ("sparse", "dense") for s in (0, 1)}
    rows = {(r["regime"], r["seed"], r["model"]): r for r in out["results"]}
    for s in out["summary"]:
        sel = [rows[(s["regime"], seed, s["model"])] for seed in (0, 1)]
        for m in bench_verdict.METRICS:
            assert s[m] == pytest.approx(np.mean([r[m] for r in sel]))
            if s["model"] == "chain BCE":
                assert m + "_delta" not in s
                continue
            ref = [rows[(s["regime"], seed, "chain BCE")][m] for seed in (0, 1)]
            assert s[m + "_delta"] == pytest.approx(np.mean(np.subtract([r[m] for r in sel], ref)))
            assert s[m + "_low"] <= s[m + "_high"] and 0 <= s[m + "_seeds_better"] <= 2
    # PWiseR and weighted BCE keep the BCE chain's clicked-space CVR booster: CVR AUC identical, interval [0, 0]
    for s in out["summary"]:
        if s["model"] in ("chain PWiseR", "chain weighted"):
            assert (s["cvr_auc_delta"], s["cvr_auc_low"], s["cvr_auc_high"]) == (0.0, 0.0, 0.0)
    # PWiseR − BCE within a family: only the chain ran with both losses; vs its BCE twin it is the main table's Δ
    assert [(w["regime"], w["model"], w["base"]) for w in out["within"]] == [
        (g, "chain PWiseR", "chain BCE") for g in ("sparse", "dense")
    ]
    main = {(s["regime"], s["model"]): s for s in out["summary"]}
    for w in out["within"]:
        s = main[(w["regime"], "chain PWiseR")]
        assert all(
            w[f"{m}_{k}"] == s[f"{m}_{k}"]
            for m in bench_verdict.METRICS
            for k in ("delta", "low", "high", "seeds_better")
        )
    assert bench_verdict.pwiser_pairs(["ESMM BCE", "ESMM PWiseR", "shared PWiseR", "chain BCE"]) == [
        ("ESMM PWiseR", "ESMM BCE")
    ]
    # the Markdown is rendered from the JSON alone, so the docs page's tables can be checked against the results
    payload = json.loads((tmp_path / "verdict.json").read_text())
    assert bench_verdict.render(payload) == (tmp_path / "verdict.md").read_text()
    # per regime: truth, chain BCE and the models, then the one within-family row (chain)
    assert len(_lines(printed, r"\| (truth|chain|shared|SharedBottom|ESMM) ")) == 2 * (len(models) + 2 + 1)
    page = tmp_path / "evidence.md"
    page.write_text(f"a\n{bench_verdict.BEGIN}\nold\n{bench_verdict.END}\nb\n")
    bench_verdict.write_page("new\n", page)
    assert page.read_text() == f"a\n{bench_verdict.BEGIN}\nnew\n{bench_verdict.END}\nb\n"


def test_docs_verdict_tables_are_the_benchmarks():
    """docs/evidence.md's verdict block is exactly what bench_verdict.py renders from
    benchmarks/results/verdict.json."""
    import json

    import bench_verdict

    text = bench_verdict.PAGE.read_text()
    block = text[text.index(bench_verdict.BEGIN) + len(bench_verdict.BEGIN) : text.index(bench_verdict.END)]
    payload = json.loads((bench_verdict.RESULTS / "verdict.json").read_text())
    assert block == "\n" + bench_verdict.render(payload)
    assert payload["args"]["seeds"] == [0, 1, 2] and set(payload["args"]["regimes"]) == {"sparse", "dense"}


def test_bench_ab_smoke(no_results, capsys):
    import bench_ab

    out = bench_ab.main(["--smoke", "--base", str(BENCH.parent)])  # this checkout against itself
    printed = capsys.readouterr().out
    assert out["pairs"] == 1 and len(out["runs"]) == 1 and set(out["runs"][0]) == {"base", "this"}
    for reg in ("sparse", "dense"):
        cases = out["summary"][reg]
        assert set(cases) == set(bench_ab.CASES)
        assert cases["round lam=0"]["ratio_over_lam0"] == pytest.approx(1.0)
        for v in cases.values():
            assert v["base_ms"] > 0 and v["this_ms"] > 0
            assert v["paired_ratio_min"] <= v["paired_ratio"] <= v["paired_ratio_max"]
    assert len(_lines(printed, r"\| (sparse|dense) \| ")) == 2 * len(bench_ab.CASES)


def test_bench_threads_smoke(no_results, capsys):
    import bench_threads

    out = bench_threads.main(["--smoke"])
    printed = capsys.readouterr().out
    assert set(out["spin"]) == {"Numba omp layer", "objectives' pool"}
    assert out["spin"]["Numba omp layer"]["layer"] == "omp" and all(v["median_ms"] >= 0 for v in out["spin"].values())
    cands = out["candidates"]["xgboost"]
    assert set(cands) == {"booster's OpenMP team (default)", "Numba prange, omp layer"}
    assert cands["Numba prange, omp layer"]["layer"] == "omp"  # (the child checked its gradients: one thread's bits)
    for v in cands.values():
        assert v["exact_over_replay"] == pytest.approx(v["wall_s"]["exact"] / v["wall_s"]["replay exact"])
        assert v["k4_over_replay"] == pytest.approx(v["wall_s"]["k=4"] / v["wall_s"]["replay k=4"])
        assert 0 < v["calls_s"]["exact"] < v["wall_s"]["exact"]
    runners = out["efficiency"]["runners"]
    assert set(runners) == {"pool", "team"} and set(out["efficiency"]["part_us"]) == {"pool", "team"}
    for eff in runners.values():
        for regime in ("sparse", "dense"):
            for v in eff[regime].values():
                assert set(v["ms"]) == {"1", "2"} and v["efficiency"]["1"] == pytest.approx(1.0)
    assert set(out["model"]["ms"]["dense"]["exact, contiguous groups"]) == {
        "16t_1000000",
        "16t_2000000",
        "64t_1000000",
        "64t_2000000",
    }
    assert "| team | dense | exact, contiguous groups |" in printed and "efficiency at 2" in printed


def test_bench_calibration_smoke(tmp_path, capsys):
    import bench_calibration

    out = bench_calibration.main(["--smoke", "--out", str(tmp_path)])
    assert {(s["setting"], s["calibration"]) for s in out["summary"]} == {
        (name, c) for name in bench_calibration.SETTINGS for c in ("none", "isotonic")
    }
    for s in out["summary"]:
        assert s["ctr_ratio"] > 0 and 0 <= s["ctr_ece"] <= 1 and 0 <= s["ctcvr_auc"] <= 1
    assert (tmp_path / "calibration.md").read_text().startswith("| setting | calibration |")
    assert "| BCE (λ=0) | isotonic |" in capsys.readouterr().out
