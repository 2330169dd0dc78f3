"""The gbdt-pwiser command line: the compare main job and its user errors."""

import json
import subprocess
import sys

import pytest

from conftest import SHARED_DATA
from gbdt_pwiser.cli import main

SMALL = ["compare", "--requests", "400", "--n-estimators", "15", "--quiet"]


def test_compare_writes_table_json_and_plots(tmp_path, capsys):
    rc = main([*SMALL, "--out", str(tmp_path), "--sweep-lam", "0,1,2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "CTCVR AUC" in out and "BCE" in out and "PWiseR" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["results"]) == {"BCE", "PWiseR"}
    for name in ("BCE", "PWiseR"):
        for key in ("ctr_auc", "cvr_auc", "ctcvr_auc", "ctr_conv_auc", "ctr_gauc", "fit_s"):
            assert 0.0 <= res["results"][name][key] < 1e6
    assert [r["lam"] for r in res["sweep"]] == [0.0, 1.0, 2.0]
    for png in ("roc.png", "lambda_sweep.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| CTCVR AUC" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("extra", [["--backend", "lightgbm", "--cvr-space", "entire", "--pairs", "3"],
                                   ["--pair-loss", "logistic", "--no-plots", "--no-sweep"]])
def test_compare_options(tmp_path, extra):
    assert main([*SMALL, "--out", str(tmp_path), "--no-sweep", *extra]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["settings"]["backend"] in ("xgboost", "lightgbm")


@pytest.mark.skipif(not (SHARED_DATA / "aliexpress_sample").exists(), reason="shared samples absent")
def test_compare_on_the_shared_aliexpress_sample_reports_no_pairs_cleanly(tmp_path, capsys):
    # 100 rows, every conversion alone in its request: either it runs or it says why in one line
    rc = main(["compare", "--data", str(SHARED_DATA / "aliexpress_sample" / "aliexpress_train_sample.csv"),
               "--n-estimators", "5", "--quiet", "--no-sweep", "--no-plots", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 0 or (rc == 2 and err.count("\n") == 1 and err.startswith("gbdt-pwiser: error:"))


@pytest.mark.parametrize("args, msg", [
    (["--data", "/nonexistent/file.csv"], "no such file"),
    (["--data", "."], "folder"),
    (["--requests", "3"], "at least 10"),
    (["--test-size", "1.5"], "test-size"),
])
def test_user_errors_are_one_line_without_traceback(args, msg, tmp_path):
    res = subprocess.run([sys.executable, "-m", "gbdt_pwiser", "compare", "--quiet", "--out", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and msg in lines[0], res.stderr


def test_unreadable_and_wrong_format_files(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["compare", "--data", str(bad), "--quiet", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gbdt-pwiser: error: cannot load") and err.count("\n") == 1


def test_no_conversions_is_a_user_error(tmp_path, capsys):

    from gbdt_pwiser.datasets import make_ad_log

    log = make_ad_log(300, n_categorical=16, n_numerical=63, random_state=0)  # full AliExpress schema
    frame = log.to_frame()
    frame["conversion"] = 0
    path = tmp_path / "noconv.csv"
    frame.to_csv(path, index=False)
    assert main(["compare", "--data", str(path), "--quiet", "--out", str(tmp_path)]) == 2
    assert "no conversions" in capsys.readouterr().err


def test_bad_option_values_are_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--pairs", "0"])
    assert e.value.code == 2
    assert "--pairs" in capsys.readouterr().err
