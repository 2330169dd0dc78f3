"""gbdt-pwiser compare --dask-workers: the chains trained with DaskCTCVRClassifier on a local cluster."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")

from gbdt_pwiser.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_compare_with_two_dask_workers(tmp_path):
    with warnings.catch_warnings(record=True) as caught:  # ~13 MB of rows: scattered, not put in the graph
        warnings.simplefilter("always")
        rc = main(
            [
                "compare",
                "--requests",
                "5000",
                "--n-estimators",
                "8",
                "--quiet",
                "--bootstrap",
                "0",
                "--no-sweep",
                "--no-plots",
                "--dask-workers",
                "2",
                "--out",
                str(tmp_path),
            ]
        )
    assert rc == 0
    assert not [w for w in caught if "large graph" in str(w.message)]
    res = json.loads((tmp_path / "results.json").read_text())
    text = json.dumps(res)
    assert "ctcvr_auc" in text


def test_dask_options_are_exclusive_and_checked(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--dask-workers", "2", "--scheduler", "tcp://x:1"])
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--dask-workers", "0"])
    args = parser.parse_args(["compare", "--scheduler", "tcp://127.0.0.1:1"])
    assert args.scheduler == "tcp://127.0.0.1:1" and args.dask_workers is None
    from gbdt_pwiser.cli._data import make_model
    from gbdt_pwiser.dask import DaskCTCVRClassifier

    assert type(make_model(args, 1.0)) is DaskCTCVRClassifier
    assert type(make_model(parser.parse_args(["compare"]), 1.0)).__name__ == "CTCVRClassifier"


def test_an_unreachable_scheduler_fails_within_the_connect_timeout(tmp_path, capsys):
    parser = build_parser()
    assert parser.parse_args(["compare"]).connect_timeout == 10  # distributed's own default is 30 s
    help_text = " ".join(parser._subparsers._group_actions[0].choices["compare"].format_help().split())
    assert "--connect-timeout SECONDS" in help_text and "default 10 s" in help_text
    t0 = time.perf_counter()
    rc = main(
        [
            "compare",
            "--requests",
            "100",
            "--quiet",
            "--no-plots",
            "--no-sweep",
            "--bootstrap",
            "0",
            "--scheduler",
            "tcp://127.0.0.1:1",
            "--connect-timeout",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 2 and time.perf_counter() - t0 < 20
    err = capsys.readouterr().err
    assert err.startswith("gbdt-pwiser: error: cannot connect to the Dask scheduler tcp://127.0.0.1:1")
    assert err.count("\n") == 1, err
    for address in ("foo", "tls://127.0.0.1:1"):  # no port; TLS without its settings
        assert main(["compare", "--scheduler", address, "--connect-timeout", "1", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith(f"gbdt-pwiser: error: cannot connect to the Dask scheduler {address}: ")
            and err.count("\n") == 1
        ), err


def test_the_evidence_run_is_refused_on_dask_before_any_work(tmp_path, capsys):
    rc = main(["compare", "--requests", "100", "--quiet", "--dask-workers", "1", "--evidence", "--out", str(tmp_path)])
    assert rc == 2
    captured = capsys.readouterr()
    assert captured.out == "" and list(tmp_path.iterdir()) == []
    assert captured.err.startswith("gbdt-pwiser: error: the evidence run fits its competitors in memory")


def test_ctrl_c_on_dask_is_one_line_and_leaves_no_process(tmp_path):
    """A Ctrl-C reaches the terminal's whole process group: the command closes the cluster and exits with
    130 and one line; the workers do not print KeyboardInterrupt tracebacks, and none is left running."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gbdt_pwiser",
            "compare",
            "--requests",
            "3000",
            "--quiet",
            "--n-estimators",
            "400",
            "--no-plots",
            "--bootstrap",
            "0",
            "--no-sweep",
            "--dask-workers",
            "2",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's job
        # with Ctrl-C's default action, as in a terminal's foreground job: a shell starts background
        # jobs (e.g. a CI run started with &) with SIGINT ignored, and a child inherits that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def group() -> set:
        res = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
        return set(res.stdout.split()) - {str(proc.pid)}

    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:  # wait for a fit in progress on the workers (XGBoost's tracker gave them their ranks), not a
        # cluster still starting: a slow machine can take longer than any fixed wait to start one
        deadline = time.monotonic() + 120
        while not any("got rank" in line for line in list(err_lines)):
            assert proc.poll() is None, "".join(err_lines)
            assert time.monotonic() < deadline, "no fit started on the workers in 120 s"
            time.sleep(0.1)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = "".join(err_lines)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "gbdt-pwiser: interrupted" and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while group() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group()
