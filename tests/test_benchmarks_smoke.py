"""A tiny smoke run of the benchmark scripts (speed itself is measured in benchmarks/, not here)."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))


@pytest.mark.parametrize("name", ["bench_objective", "bench_fit", "bench_memory", "bench_startup"])
def test_benchmark_script_smoke(name, capsys):
    mod = __import__(name)
    out = mod.main(["--smoke"])
    assert out
    assert "x" in capsys.readouterr().out or name == "bench_startup"


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
