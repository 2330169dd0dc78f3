"""A tiny smoke run of benchmarks/bench_external.py (figures have the promised shape; no result file)."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("xgboost")
pytest.importorskip("pyarrow")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


def test_bench_external_smoke(tmp_path, monkeypatch):
    import bench_external
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(bench_external, "RESULTS", tmp_path / "results")
    out = bench_external.main(["--smoke"])
    assert not (tmp_path / "results").exists()
    assert set(out["runs"]) == {"external", "in_memory"} and out["shards"] > 1
    ext, mem = out["runs"]["external"], out["runs"]["in_memory"]
    for run in (ext, mem):
        assert run["fit_s"] > 0 and run["peak_rss_mib"] >= run["rss_before_fit_mib"] > 0
        assert 0.5 < run["auc_ctr_click"] <= 1.0
    # small shards: exact per-shard sketches, so both fits give the same model (see test_outofcore.py)
    assert ext["auc_ctcvr"] == mem["auc_ctcvr"] and ext["auc_ctr_click"] == mem["auc_ctr_click"]
    assert ext["rows"] == out["rows"] and ext["state_bytes_per_row"]["labels_int8"] == 1.0
    md = bench_external.markdown(out)
    assert "| external |" in md and "| in_memory |" in md
