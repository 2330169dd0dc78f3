"""Tests of ``gbdt-pwiser bench-neural`` (gbdt_pwiser.neural.bench): a tiny in-process run,
the tables and files it writes, the torch-missing path, user errors and argument parsing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gbdt_pwiser import cli
from gbdt_pwiser.neural.bench import DEFAULTS, MODEL_NAMES, QUICK, resolve_settings

ROOT = Path(__file__).resolve().parents[2]
AUC_KEYS = ("ctr_auc", "cvr_auc", "ctcvr_auc", "ctr_gauc", "ctr_conv_auc")
HEADERS = ("CTR AUC", "CVR AUC", "CTCVR AUC", "CTR GAUC", "conv. AUC of pCTR", "train (s)")
DISPLAY = ["SharedBottom", "ESMM", "MMoE", "PLE", "GBDT chain (xgboost)"]
TINY = ["--quick", "--quiet", "--n-jobs", "1", "--torch-threads", "1", "--n-estimators", "10"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    torch = pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("bench")
    import contextlib
    import io

    threads = torch.get_num_threads()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["bench-neural", *TINY, "--out", str(out)])
    assert torch.get_num_threads() == threads  # restored
    return rc, buf.getvalue(), out


# --------------------------------------------------------------------------- the tiny run


def test_quick_run_exits_zero_and_writes_files(quick_run):
    rc, _, out = quick_run
    assert rc == 0
    assert (out / "neural_bench.json").is_file()
    assert (out / "neural_bench.md").is_file()


def test_every_model_and_loss_has_a_row_with_finite_aucs(quick_run):
    _, _, out = quick_run
    summary = json.loads((out / "neural_bench.json").read_text())
    rows = summary["rows"]
    assert [(r["key"], r["loss_id"]) for r in rows] == [(m, lo) for m in MODEL_NAMES for lo in ("bce", "pwiser")]
    for r in rows:
        for k in AUC_KEYS:
            assert math.isfinite(r[k]) and 0.0 <= r[k] <= 1.0, (r["model"], r["loss"], k, r[k])
        assert r["train_s"] > 0
        assert r["lam"] == (0.0 if r["loss_id"] == "bce" else 1.0)
        if r["key"] != "gbdt":
            assert len(r["epoch_loss"]) == QUICK["epochs"]
            assert all(math.isfinite(v) for v in r["epoch_loss"])
    d = summary["data"]
    assert d["train_rows"] + d["test_rows"] == d["rows"] and d["test_conversions"] > 0
    eff = summary["settings"]["effective"]
    assert eff["epochs"] == QUICK["epochs"] and eff["n_estimators"] == 10 and eff["small_nets"] is True
    assert summary["settings"]["requests"] == QUICK["requests"]
    assert summary["total_s"] > 0
    assert summary["machine"]["torch_threads"] == 1


def test_table_in_stdout_and_markdown(quick_run):
    _, stdout, out = quick_run
    md = (out / "neural_bench.md").read_text()
    for text in (stdout, md):
        assert "| model" in text and all(h in text for h in HEADERS)
        for name in DISPLAY:
            assert f"| {name} " in text
        assert text.count("| BCE ") >= 5 and text.count("BCE + 1·PWiseR") >= 5
        assert "PWiseR − BCE" in text and "Δ CTCVR AUC" in text
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("| ")]
    rows = [cells for cells in rows if cells[1] in ("BCE", "BCE + 1·PWiseR")]
    assert [(c[0], c[1]) for c in rows] == [(n, lo) for n in DISPLAY for lo in ("BCE", "BCE + 1·PWiseR")]
    for cells in rows:
        assert len(cells) == 2 + len(HEADERS)
        assert all(math.isfinite(float(c)) for c in cells[2:])
    assert "simulated log" in md and "seed 0" in md
    assert "wrote" in stdout


def test_same_seed_same_numbers(quick_run, tmp_path):
    _, _, out = quick_run
    first = {(r["key"], r["loss_id"]): r for r in json.loads((out / "neural_bench.json").read_text())["rows"]}
    with open(os.devnull, "w") as devnull:
        import contextlib

        with contextlib.redirect_stdout(devnull):
            rc = cli.main(
                ["bench-neural", *TINY, "--models", "mmoe,gbdt", "--losses", "pwiser", "--out", str(tmp_path)]
            )
    assert rc == 0
    again = json.loads((tmp_path / "neural_bench.json").read_text())["rows"]
    assert [(r["key"], r["loss_id"]) for r in again] == [("mmoe", "pwiser"), ("gbdt", "pwiser")]
    for r in again:
        for k in AUC_KEYS:
            assert r[k] == pytest.approx(first[(r["key"], r["loss_id"])][k], abs=1e-9)
    md = (tmp_path / "neural_bench.md").read_text()
    assert "PWiseR − BCE" not in md  # no model has both losses


# --------------------------------------------------------------------------- torch missing


def test_torch_missing_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    rc = cli.main(["bench-neural", *TINY, "--models", "esmm", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "pip install gbdt-pwiser[torch]" in err
    assert err.strip().count("\n") == 0 and err.startswith("gbdt-pwiser: error:")
    assert not (tmp_path / "o").exists()  # failed before any work


def test_trees_only_run_needs_no_torch(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    rc = cli.main(["bench-neural", *TINY, "--models", "gbdt", "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "neural_bench.json").read_text())["rows"]
    assert [r["key"] for r in rows] == ["gbdt", "gbdt"]
    assert "GBDT chain (xgboost)" in capsys.readouterr().out


#: Makes ``import torch`` fail as if it were not installed (a ``sys.modules['torch'] = None``
#: entry would also break SciPy's import in a fresh interpreter, which probes ``sys.modules``).
NO_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def test_fresh_interpreter_without_torch():
    code = NO_TORCH + (
        "import gbdt_pwiser, gbdt_pwiser.cli, gbdt_pwiser.neural.bench\n"
        "gbdt_pwiser.cli.build_parser()\n"
        "sys.exit(gbdt_pwiser.cli.main(['bench-neural', '--quick', '--quiet', '--out', '/nonexistent/x']))\n"
    )
    res = _run(code)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == res.stderr.strip().splitlines()[0]
    assert "pip install gbdt-pwiser[torch]" in res.stderr and "Traceback" not in res.stderr


def test_import_does_not_import_torch():
    res = _run(
        "import sys, gbdt_pwiser, gbdt_pwiser.cli, gbdt_pwiser.neural.bench\n"
        "gbdt_pwiser.cli.build_parser().parse_args(['bench-neural'])\n"
        "print('torch' in sys.modules)"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


# --------------------------------------------------------------------------- user errors


def test_user_errors_one_line(tmp_path, capsys):
    rc = cli.main(
        ["bench-neural", "--quiet", "--models", "gbdt", "--out", str(tmp_path), "--data", "/nonexistent/log.csv"]
    )
    assert rc == 2
    assert capsys.readouterr().err == "gbdt-pwiser: error: cannot read /nonexistent/log.csv: no such file or folder\n"


def test_outputs_that_cannot_be_written_fail_before_any_work(tmp_path, capsys):
    (tmp_path / "neural_bench.json").mkdir()
    rc = cli.main(["bench-neural", *TINY, "--models", "gbdt", "--out", str(tmp_path)])
    assert rc == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"gbdt-pwiser: error: cannot write {tmp_path / 'neural_bench.json'}: it is a folder\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--requests", "5"], "argument --requests: must be an integer >= 10, got 5"),
        (["--test-size", "1.5"], "argument --test-size: must be in (0, 1), got 1.5"),
    ],
)
def test_bad_sizes_are_parser_errors(extra, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench-neural", "--quiet", *extra])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"gbdt-pwiser bench-neural: error: {message}"


# --------------------------------------------------------------------------- parsing


def test_cli_subcommand_parses():
    args = cli.build_parser().parse_args(
        [
            "bench-neural",
            "--models",
            "PLE,shared-bottom,trees",
            "--losses",
            "pwiser",
            "--epochs",
            "4",
            "--lam",
            "0.5",
            "--margin-click-only",
            "0.2",
            "--margin-no-click",
            "0.4",
            "--backend",
            "lightgbm",
            "--requests",
            "700",
            "--seed",
            "3",
            "--out",
            "x",
        ]
    )
    assert args.command == "bench-neural"
    assert args.models == ["shared_bottom", "ple", "gbdt"]  # table order
    assert args.losses == ["pwiser"]
    assert (args.epochs, args.lam, args.margin_click_only, args.margin_no_click) == (4, 0.5, 0.2, 0.4)
    assert (args.backend, args.requests, args.seed, str(args.out)) == ("lightgbm", 700, 3, "x")
    cfg = resolve_settings(args)
    assert cfg["epochs"] == 4 and cfg["batch_size"] == DEFAULTS["batch_size"]


def test_defaults_and_quick_resolution():
    args = cli.build_parser().parse_args(["bench-neural"])
    assert args.models == list(MODEL_NAMES) and args.losses == ["bce", "pwiser"]
    assert args.backend == "xgboost" and str(args.out) == "neural_bench_out" and args.seed == 0
    assert args.torch_threads == 1 and args.n_jobs is None
    cfg = resolve_settings(args)
    assert {k: cfg[k] for k in DEFAULTS} == DEFAULTS
    assert all(p == {} for p in cfg["model_params"].values())
    quick = resolve_settings(cli.build_parser().parse_args(["bench-neural", "--quick", "--epochs", "2"]))
    assert quick["epochs"] == 2 and quick["requests"] == QUICK["requests"]
    assert all(quick["model_params"][m] for m in ("shared_bottom", "esmm", "mmoe", "ple"))


@pytest.mark.parametrize(
    "bad",
    [
        ["--models", "resnet"],
        ["--models", ","],
        ["--losses", "focal"],
        ["--epochs", "0"],
        ["--lr", "-1"],
        ["--lam", "-1"],
    ],
)
def test_bad_options_exit_2(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["bench-neural", *bad])
    assert exc.value.code == 2
    assert f"gbdt-pwiser bench-neural: error: argument {bad[0]}:" in capsys.readouterr().err


def test_benchmark_wrapper_help():
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "neural_vs_gbdt.py"), "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "bench-neural" in res.stdout and "--models" in res.stdout and "--quick" in res.stdout


def test_bench_logic_does_not_import_the_command_line():
    res = _run(
        "import sys, gbdt_pwiser.neural.bench\nprint(sorted(m for m in sys.modules if m.startswith('gbdt_pwiser.cli')))"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
