"""The gbdt-pwiser command line: the compare main job, its output, its options and its user errors."""

import io
import json
import subprocess
import sys

import pytest

from conftest import SHARED_DATA
from gbdt_pwiser import __version__
from gbdt_pwiser.cli import build_parser, main

SMALL = ["compare", "--requests", "600", "--n-estimators", "15", "--quiet", "--bootstrap", "50"]
AUC_KEYS = ("ctr_auc", "ctr_conv_auc", "cvr_auc", "ctcvr_auc")
#: the default table's models: BCE, PWiseR (--lam), conversion-weighted BCE (--conversion-weight)
MODELS = ("BCE", "PWiseR (λ=1)", "weighted BCE (α=1)")


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    buf = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(buf):
        rc = main([*SMALL, "--out", str(out), "--sweep-lam", "0,1,2"])
    return rc, buf.getvalue(), out


def test_compare_writes_table_json_and_plots(compare_run):
    rc, out, tmp_path = compare_run
    assert rc == 0
    assert "CTCVR AUC" in out and "BCE" in out and "PWiseR" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["models"] == list(MODELS) and set(res["results"]) == set(MODELS)
    assert res["results"][MODELS[2]]["conversion_weight"] == 1.0 and res["results"][MODELS[1]]["lam"] == 1.0
    for name in MODELS:
        for key in (*AUC_KEYS, "ctr_gauc"):
            assert 0.0 <= res["results"][name][key] <= 1.0
        assert res["results"][name]["fit_s"] > 0
    assert [r["lam"] for r in res["sweep"]] == [0.0, 1.0, 2.0]
    for png in ("roc.png", "calibration.png", "lambda_sweep.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| CTCVR AUC" in (tmp_path / "results.md").read_text()


def test_compare_reports_test_counts(compare_run):
    _, out, tmp_path = compare_run
    res = json.loads((tmp_path / "results.json").read_text())
    d = res["data"]
    assert d["train_rows"] + d["test_rows"] == d["rows"]
    assert 0 < d["test_conversions"] <= d["test_clicks"] < d["test_rows"]
    assert 0 < d["test_groups_with_conversion"] <= min(d["test_groups"], d["test_conversions"])
    line = (
        f"test: {d['test_rows']} rows in {d['test_groups']} groups, {d['test_clicks']} clicks, "
        f"{d['test_conversions']} conversions in {d['test_groups_with_conversion']} groups"
    )
    assert line in out.splitlines()


def test_compare_bootstrap_intervals_in_table_and_json(compare_run):
    _, out, tmp_path = compare_run
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["bootstrap"]["n_resamples"] == 50 and res["bootstrap"]["confidence"] == 0.95
    assert set(res["differences"]) == set(MODELS[1:])
    header = next(ln for ln in out.splitlines() if ln.startswith("| metric"))
    for name in MODELS[1:]:
        diffs = res["differences"][name]
        for k in AUC_KEYS:
            d = diffs[k]
            assert d["delta"] == pytest.approx(res["results"][name][k] - res["results"]["BCE"][k], abs=1e-12)
            assert d["low"] <= d["high"] and 0 < d["n_valid"] <= 50
        assert set(diffs["ctr_gauc"]) == {"delta"}  # no interval for GAUC
        assert f"{name.split(' (')[0]} − BCE [95% CI]" in header
    ctr_row = next(ln for ln in out.splitlines() if ln.startswith("| CTR AUC"))
    for name in MODELS[1:]:
        d = res["differences"][name]["ctr_auc"]
        assert f"{d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" in ctr_row


def test_compare_reports_calibration(compare_run):
    _, out, tmp_path = compare_run
    res = json.loads((tmp_path / "results.json").read_text())
    for name in MODELS:
        r = res["results"][name]
        assert 0.3 < r["ctr_ratio"] < 3.0 and 0.0 <= r["ctr_ece"] < 0.1
        assert r["ctcvr_ratio"] > 0 and r["ctcvr_ece"] >= 0
    assert any(ln.startswith("| pCTR predicted / observed clicks") for ln in out.splitlines())
    assert "conversions 15.0% of clicks" in out.splitlines()[0]  # the default's denser conversions, stated


def test_compare_bootstrap_is_deterministic_and_can_be_off(compare_run, tmp_path):
    _, _, first = compare_run
    a = json.loads((first / "results.json").read_text())["differences"]
    assert main([*SMALL, "--out", str(tmp_path), "--no-sweep", "--no-plots"]) == 0
    b = json.loads((tmp_path / "results.json").read_text())["differences"]
    assert a == b
    assert main([*SMALL, "--out", str(tmp_path), "--no-sweep", "--no-plots", "--bootstrap", "0"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert all(set(v) == {"delta"} for d in res["differences"].values() for v in d.values())
    assert "[95% CI]" not in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize(
    "extra, backend",
    [
        (["--backend", "lightgbm", "--cvr-space", "entire", "--pairs", "3"], "lightgbm"),
        (["--pair-loss", "logistic", "--no-plots"], "xgboost"),
    ],
)
def test_compare_options(tmp_path, extra, backend):
    assert main([*SMALL, "--out", str(tmp_path), "--no-sweep", "--bootstrap", "0", *extra]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["settings"]["backend"] == backend
    assert res["sweep"] == []
    for png in ("roc.png", "calibration.png"):
        assert (tmp_path / png).exists() == ("--no-plots" not in extra)


@pytest.mark.skipif(not (SHARED_DATA / "aliexpress_sample").exists(), reason="shared samples absent")
def test_compare_on_the_shared_aliexpress_sample_warns_that_the_test_part_has_no_conversion(tmp_path, capsys):
    # 100 rows in 41 requests; with seed 0 the 9 test requests hold clicks only and no conversion
    rc = main(
        [
            "compare",
            "--data",
            str(SHARED_DATA / "aliexpress_sample" / "aliexpress_train_sample.csv"),
            "--n-estimators",
            "5",
            "--quiet",
            "--no-sweep",
            "--no-plots",
            "--out",
            str(tmp_path),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert "100 exposures in 41 groups" in captured.out
    assert "test: 18 rows in 9 groups, 18 clicks, 0 conversions in 0 groups" in captured.out
    assert captured.err.startswith("gbdt-pwiser: warning: the test part lacks") and captured.err.count("\n") == 1
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["data"]["test_conversions"] == 0


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--data", "/nonexistent/file.csv"], "no such file"),
        (["--data", "."], "folder"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, msg, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "gbdt_pwiser", "compare", "--quiet", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("gbdt-pwiser: error:") and "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and msg in lines[0], res.stderr


@pytest.mark.parametrize("blocked", ["results.json", "results.md", "roc.png", "calibration.png", "lambda_sweep.png"])
def test_outputs_that_cannot_be_written_fail_before_any_fitting(tmp_path, capsys, blocked):
    (tmp_path / blocked).mkdir()  # a folder where an output file goes
    assert main([*SMALL, "--out", str(tmp_path), "--sweep-lam", "0,2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing fitted, no table
    assert captured.err == f"gbdt-pwiser: error: cannot write {tmp_path / blocked}: it is a folder\n"
    # --no-plots writes no PNG: a folder named like one is no obstacle
    if blocked.endswith(".png"):
        assert main([*SMALL, "--out", str(tmp_path), "--no-plots", "--n-estimators", "3", "--bootstrap", "0"]) == 0
        table = capsys.readouterr().out
        assert "| CTCVR AUC" in table and "wrote" in table


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
    assert capsys.readouterr().err == "gbdt-pwiser: error: the training part has no conversions: nothing to compare\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pairs", "0"], "argument --pairs: must be \"all\" or a positive integer, got '0'"),
        (["--requests", "3"], "argument --requests: must be an integer >= 10, got 3"),
        (["--test-size", "1.5"], "argument --test-size: must be in (0, 1), got 1.5"),
        (["--lam", "-1"], "argument --lam: must be a finite number >= 0, got -1.0"),
        (["--margin-no-click", "nan"], "argument --margin-no-click: must be a finite number >= 0, got nan"),
        (["--n-estimators", "0"], "argument --n-estimators: must be an integer >= 1, got 0"),
        (["--learning-rate", "x"], "argument --learning-rate: expected a number, got 'x'"),
        (["--sweep-lam", "0,-1"], "argument --sweep-lam: must be a finite number >= 0, got -1.0"),
        (["--bootstrap", "-1"], "argument --bootstrap: must be an integer >= 0, got -1"),
    ],
)
def test_bad_option_values_are_rejected_by_the_parser(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", *args])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"gbdt-pwiser compare: error: {message}"


def test_shared_options_are_declared_once_with_the_same_checks():
    """compare and bench-neural accept and reject the shared options alike."""
    parser = build_parser()
    shared = [
        "--lam",
        "0.5",
        "--margin-click-only",
        "0.2",
        "--margin-no-click",
        "0.3",
        "--pairs",
        "4",
        "--seed",
        "3",
        "--test-size",
        "0.3",
        "--requests",
        "50",
        "--max-depth",
        "3",
        "--n-jobs",
        "1",
    ]
    a = vars(parser.parse_args(["compare", *shared]))
    b = vars(parser.parse_args(["bench-neural", *shared]))
    for key in (
        "lam",
        "margin_click_only",
        "margin_no_click",
        "pairs",
        "seed",
        "test_size",
        "requests",
        "max_depth",
        "n_jobs",
    ):
        assert a[key] == b[key]
    for bad in (["--lam", "-1"], ["--pairs", "x"], ["--max-depth", "0"], ["--requests", "9"]):
        for command in ("compare", "bench-neural"):
            with pytest.raises(SystemExit):
                parser.parse_args([command, *bad])


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"gbdt-pwiser {__version__}\n"


def test_help_texts_are_plain():
    for command in ("compare", "bench-neural"):
        res = subprocess.run(
            [sys.executable, "-m", "gbdt_pwiser", command, "--help"], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
        assert f"usage: gbdt-pwiser {command}" in res.stdout
        for role in (":mod:", ":func:", ":class:", ":data:", "``"):
            assert role not in res.stdout, (command, role)


def test_progress_bars_only_on_a_terminal(tmp_path, capsys):
    """Without --quiet, a run whose stderr is not a terminal (CI log, pipe) draws no bar."""
    assert (
        main(
            [
                "compare",
                "--requests",
                "600",
                "--n-estimators",
                "5",
                "--bootstrap",
                "0",
                "--no-sweep",
                "--no-plots",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err.splitlines()  # one-line data warnings may appear; no bar
    assert all(ln.startswith("gbdt-pwiser: warning: ") for ln in err), err


def test_progress_helper_draws_on_a_terminal_and_not_on_a_pipe():
    from gbdt_pwiser.cli._output import on_terminal, progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for stream, drawn in ((io.StringIO(), False), (Tty(), True)):
        bar = progress(False, stream=stream, total=3)
        bar.update(3)
        bar.close()
        assert bool(stream.getvalue()) is drawn
        assert on_terminal(False, stream) is drawn
    quiet = Tty()
    bar = progress(True, stream=quiet, total=3)
    bar.update(3)
    bar.close()
    assert quiet.getvalue() == "" and on_terminal(True, Tty()) is False
