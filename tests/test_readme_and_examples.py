"""The README's Python snippets and the examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run_as_written():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    ns: dict = {"__name__": "readme"}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - our own documentation
    assert "booster" in ns


@pytest.mark.parametrize("script, args", [
    ("quickstart_xgboost.py", ["--requests", "600", "--rounds", "20"]),
    ("quickstart_lightgbm.py", ["--requests", "600", "--rounds", "20"]),
])
def test_quickstart_examples_run(script, args):
    res = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "conversion AUC of pCTR" in res.stdout


def test_aliexpress_sample_example_runs_on_the_shared_sample():
    from conftest import SHARED_DATA

    d = SHARED_DATA / "aliexpress_sample"
    if not d.exists():
        pytest.skip("shared samples absent")
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "aliexpress_sample_estimator.py"),
                          "--train", str(d / "aliexpress_train_sample.csv"),
                          "--test", str(d / "aliexpress_test_sample.csv"), "--n-estimators", "5"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "train: 100 rows" in res.stdout and "ctcvr_auc" in res.stdout


def test_cli_example_script_runs(tmp_path):
    import os
    import shutil

    if shutil.which("bash") is None:
        pytest.skip("no bash")
    env = {**os.environ, "REQUESTS": "300", "OUT": str(tmp_path), "EXTRA": "--n-estimators 5 --quiet",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run(["bash", str(ROOT / "examples" / "cli_compare.sh")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "results.json").exists() and (tmp_path / "lightgbm_entire" / "results.json").exists()
    assert (tmp_path / "lambda_sweep.png").exists()
