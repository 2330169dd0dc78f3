"""A tiny smoke run of the benchmark scripts: the figures they return and print have the promised shape.

Speed itself is measured in benchmarks/, not here; a smoke run writes no result file.
"""

import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
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
        for name, r in variants.items():
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
        assert all(r[k] > 0 for k in ("native", "exact", "k=4", "data_loaded_mib"))
        assert r["exact_over_native"] == pytest.approx(r["exact"] / r["native"])
        assert r["k=4_over_native"] == pytest.approx(r["k=4"] / r["native"])
        assert len(_lines(printed, rf"{backend}: peak RSS native \d+ MiB, exact \d+ MiB")) == 1


def test_bench_startup_smoke(no_results, capsys):
    import bench_startup

    out = bench_startup.main(["--smoke"])
    printed = capsys.readouterr().out
    assert [len(out["runs"][k]) for k in ("cold", "warm")] == [1, 1]
    for kind in ("cold", "warm"):
        best = out["best"][kind]
        assert set(best) == {"import_s", "first_call_s", "second_call_s"}
        assert all(v > 0 for v in best.values())
        assert len(_lines(printed, rf"{kind} cache: import \d+\.\d\d s, first grad_hess \d+\.\d\d s")) == 1


def test_readme_tables_render_from_results(tmp_path, monkeypatch):
    import common
    import run_all

    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert "No results yet" in run_all.tables()
    common.write_result("startup", {"best": {"cold": {"import_s": 1, "first_call_s": 5, "second_call_s": 0.01},
                                             "warm": {"import_s": 1, "first_call_s": 0.5, "second_call_s": 0.01}}})
    text = run_all.tables()
    assert "| warm | 1.00 | 0.50 | 10.0 |" in text and "target ≤ 1 s: met" in text


def test_bench_evidence_smoke(no_results, capsys):
    import bench_evidence
    from gbdt_pwiser.evidence import METHODS

    out = bench_evidence.main(["--smoke"])
    printed = capsys.readouterr().out
    assert set(out["regimes"]) == {"sparse", "dense"} and "seeds [0]" in out["conditions"]
    for r in out["regimes"].values():
        assert {k.split()[0] for k in r["points"]} == set(METHODS)
        assert all(0.0 <= p["ctr_auc"] <= 1.0 for p in r["points"].values())
    assert len(_lines(printed, r"\| (pwiser|weighted|ranker|shared)")) == 2 * 10
