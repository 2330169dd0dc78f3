"""The user guide's Python snippets (docs/*.md) and the examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: pages whose ```python blocks are not run here, and why
NOT_RUN_HERE = {
    "distributed.md": "needs a Dask cluster and Parquet shards; tests/engines/ runs the paths",
    "serving.md": "tests/estimator/test_serving.py runs it in a process that cannot import gbdt_pwiser",
}


def _python_blocks(page):
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


def _run_page(page, ns=None):
    """Run the page's Python blocks in order, in one namespace (a page reads as one session)."""
    ns = {"__name__": "docs"} if ns is None else ns
    for code in _python_blocks(page):
        exec(compile(code, str(DOCS / page), "exec"), ns)  # our own documentation
    return ns


def test_every_python_block_of_the_guide_is_run():
    """A page that gains a ```python block is run by a test below, or says here why not."""
    run_here = {"objectives.md", "estimator.md", "data.md", "calibration.md", "compare.md"}
    with_code = {p.name for p in DOCS.glob("*.md") if _python_blocks(p.name)}
    assert with_code - run_here - set(NOT_RUN_HERE) == set()
    assert run_here <= with_code


def test_objectives_page_runs_as_written():
    import lightgbm as lgb
    import numpy as np
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    blocks = _python_blocks("objectives.md")
    assert "xgb.train(" in blocks[0] and "lgb.train(" in blocks[1]
    ns = {"__name__": "docs"}
    exec(compile(blocks[0], "objectives.md", "exec"), ns)
    booster, p_ctr, click = ns["booster"], ns["p_ctr"], ns["click"]
    assert isinstance(booster, xgb.Booster) and booster.num_boosted_rounds() == 50
    assert p_ctr.shape == (20_000,) and np.all((p_ctr > 0) & (p_ctr < 1))
    assert roc_auc_score(click, p_ctr) > 0.65  # the click signal X[:, 0] is learnt
    exec(compile(blocks[1], "objectives.md", "exec"), ns)
    booster, margin = ns["booster"], ns["margin"]
    assert isinstance(booster, lgb.Booster) and booster.num_trees() == 50
    assert margin.shape == (20_000,) and np.all(np.isfinite(margin))
    assert roc_auc_score(ns["click"], margin) > 0.65


def test_estimator_page_runs_as_written(capsys):
    import numpy as np

    ns = _run_page("estimator.md")
    model, test, p_ctcvr = ns["model"], ns["test"], ns["p_ctcvr"]
    assert p_ctcvr.shape == (len(test),) and np.all((p_ctcvr >= 0) & (p_ctcvr <= 1))
    np.testing.assert_allclose(p_ctcvr, model.predict_proba(test.X)[:, 1])
    printed = capsys.readouterr().out
    for key in ("ctr_auc", "cvr_auc", "ctcvr_auc", "ctr_gauc"):
        assert f"'{key}'" in printed


def test_data_page_runs_as_written():
    ns = _run_page("data.md")
    train, test = ns["train"], ns["test"]
    assert set(train.group).isdisjoint(set(test.group)) and len(train) + len(test) == len(ns["log"])


def test_compare_page_runs_as_written(capsys):
    ns = _run_page("compare.md")
    table = ns["table"]
    assert list(table["model"].unique()) == ["BCE", "PWiseR (λ=1)", "weighted BCE (α=1)"]
    assert "ctcvr_ratio" in capsys.readouterr().out


def test_calibration_page_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the page saves day1.zip in the working folder
    ns = _run_page("calibration.md")
    model, again = ns["model"], ns["again"]
    assert set(model.calibration_.ratios) == {"ctr", "ctcvr"} and again.calibration_ is not None
    assert (again.n_rounds_ctr_, again.n_rounds_cvr_) == (30, 30)  # 20 rounds of day 1, 10 more
    assert (tmp_path / "day1.zip").exists()
    assert "test clicks: predicted" in capsys.readouterr().out


@pytest.mark.parametrize(
    "script, args",
    [
        ("quickstart_xgboost.py", ["--requests", "600", "--rounds", "20"]),
        ("quickstart_lightgbm.py", ["--requests", "600", "--rounds", "20"]),
    ],
)
def test_quickstart_examples_run(script, args):
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    hit = re.search(r"best iteration (\d+): click AUC (\S+), conversion AUC of pCTR (\S+)$", res.stdout.strip())
    assert hit, res.stdout
    best, click_auc, conv_auc = int(hit[1]), float(hit[2].rstrip(",")), float(hit[3])
    assert 0 <= best < 20
    assert 0.5 < click_auc <= 1.0 and 0.0 <= conv_auc <= 1.0  # finite: the validation part holds conversions


def test_aliexpress_sample_example_runs_on_the_shared_sample():
    from conftest import SHARED_DATA

    d = SHARED_DATA / "aliexpress_sample"
    if not d.exists():
        pytest.skip("shared samples absent")
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "aliexpress_sample_estimator.py"),
            "--train",
            str(d / "aliexpress_train_sample.csv"),
            "--test",
            str(d / "aliexpress_test_sample.csv"),
            "--n-estimators",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "train: 100 rows" in res.stdout and "ctcvr_auc" in res.stdout


def test_cli_example_script_runs(tmp_path):
    import os
    import shutil

    if shutil.which("bash") is None:
        pytest.skip("no bash")
    env = {
        **os.environ,
        "REQUESTS": "600",
        "OUT": str(tmp_path),
        "EXTRA": "--n-estimators 5 --bootstrap 20 --quiet",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    res = subprocess.run(
        ["bash", str(ROOT / "examples" / "cli_compare.sh")], capture_output=True, text=True, timeout=600, env=env
    )
    assert res.returncode == 0, res.stderr
    import json

    first = json.loads((tmp_path / "results.json").read_text())
    second = json.loads((tmp_path / "lightgbm_entire" / "results.json").read_text())
    assert (first["settings"]["backend"], first["settings"]["cvr_space"]) == ("xgboost", "clicked")
    assert (second["settings"]["backend"], second["settings"]["cvr_space"]) == ("lightgbm", "entire")
    assert [r["lam"] for r in first["sweep"]] == [0.0, 0.5, 1.0, 2.0] and second["sweep"] == []
    assert first["data"]["groups"] == second["data"]["groups"] == 600
    assert (tmp_path / "lambda_sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert res.stdout.count("| CTCVR AUC") == 2


def test_readme_python_blocks_run(capsys):
    """The README's runnable examples (```python blocks; ```text ones need files or a cluster)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) == 3
    ns = {"__name__": "readme"}
    for code in blocks:
        exec(compile(code, str(ROOT / "README.md"), "exec"), ns)
    model = ns["model"]
    assert model.ctr_booster_.num_boosted_rounds() == 60  # continued: 30 + 30 rounds
    assert "ctcvr_auc" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [[], ["--csv"]])
def test_own_log_example_runs(tmp_path, extra):
    """examples/own_log_compare.py: load_log on a log in its own column names (Parquet folder or CSV), then compare."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "own_log_compare.py"), "--small", "--out", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "columns ['city'] read as categorical" in res.stdout
    for name in ("BCE", "PWiseR (λ=1)", "weighted BCE (α=1)"):
        assert name in res.stdout
    for png in ("roc.png", "calibration.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
