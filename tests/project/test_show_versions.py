"""The version in one place, and show_versions() for bug reports."""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import gbdt_pwiser
from gbdt_pwiser import _show_versions
from gbdt_pwiser._version import __version__

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gbdt_pwiser._version.__version__"}
    assert gbdt_pwiser.__version__ == __version__ and re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    hits = [
        p for p in (ROOT / "gbdt_pwiser").rglob("*.py") if re.search(r"^__version__\s*=", p.read_text(), flags=re.M)
    ]
    assert [p.name for p in hits] == ["_version.py"]


def test_cli_version_agrees(capsys):
    from gbdt_pwiser.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"gbdt-pwiser {gbdt_pwiser.__version__}"


def test_changelog_has_unreleased_and_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and f"## [{__version__}]" in text


def test_declared_dependencies_are_pyprojects():
    deps = _show_versions.declared_dependencies()
    project = PYPROJECT["project"]
    core = [re.match(r"[A-Za-z0-9._-]+", r)[0] for r in project["dependencies"]]
    assert [n for n, where in deps.items() if "core" in where] == core
    assert deps["pyarrow"] == ["parquet", "cli", "test"]  # cli and test take it through gbdt-pwiser[parquet]
    assert "gbdt-pwiser" not in deps


def test_show_versions_prints_every_dependency(capsys):
    gbdt_pwiser.show_versions()
    out = capsys.readouterr().out
    for title in ("System:", "Dependencies:", "Optional dependencies [extras]:", "Numba:", "CUDA:"):
        assert f"\n{title}\n" in out
    for name in _show_versions.declared_dependencies():
        assert re.search(rf"^\s+{re.escape(name)}: \S", out, flags=re.M), name
    assert re.search(rf"^\s+gbdt-pwiser: {re.escape(__version__)}$", out, flags=re.M)
    assert re.search(r"^\s+threading layer: (tbb|omp|workqueue)$", out, flags=re.M)
    assert re.search(r"^\s+cpus: \d+", out, flags=re.M)


def test_show_versions_initialises_no_gpu_without_a_driver():
    try:
        ctypes.CDLL(_show_versions._DRIVER)
        pytest.skip("an NVIDIA driver is installed here")
    except OSError:
        pass
    code = (
        "import sys, gbdt_pwiser; gbdt_pwiser.show_versions(); "
        "print('imported numba.cuda:', any(m == 'numba.cuda' or m.startswith(('numba.cuda.', 'numba_cuda')) "
        "for m in sys.modules))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "imported numba.cuda: False" in r.stdout
    assert re.search(r"^\s+driver: not found", r.stdout, flags=re.M)
    assert re.search(r"^\s+usable: no", r.stdout, flags=re.M)
