"""A tiny smoke run of benchmarks/bench_dask.py (figures have the promised shape; no result file)."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


def test_bench_dask_smoke(tmp_path, monkeypatch):
    import bench_dask
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(bench_dask, "RESULTS", tmp_path / "results")
    out = bench_dask.main(["--smoke"])
    assert not (tmp_path / "results").exists()
    assert out["fit_s"]["local_2_threads"] > 0 and out["fit_s"]["dask_2x1"] > 0
    assert len(out["worker_peak_rss_mib"]) == 2 and all(v > 0 for v in out["worker_peak_rss_mib"].values())
    assert set(out["ctr_booster_peak_rss_mib"]) == {"external", "in_memory"}
    for side in ("local", "dask"):
        assert 0.5 < out["auc"][side]["ctr"] <= 1.0
