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
