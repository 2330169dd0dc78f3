"""The one-line notice while the Numba kernels compile on first use (and silence afterwards)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba import njit

from gbdt_pwiser import _threads

ROOT = Path(__file__).resolve().parents[1]


def test_compilation_of_own_kernels_prints_one_line_once(monkeypatch, capsys):
    monkeypatch.setitem(_threads._notice, "printed", False)
    with _threads.numba_threads(1):  # installs the listener
        pass

    def foreign(x):
        return x + 1

    njit(foreign)(1)  # another package's compilation: no notice
    assert capsys.readouterr().err == ""

    def own(x):
        return x * 2

    own.__module__ = "gbdt_pwiser.kernels.fake"
    njit(own)(1.0)
    njit(own)(np.int64(1))  # a second compilation: still one line
    err = capsys.readouterr().err
    assert err.count(_threads.NOTICE) == 1 and err.count("\n") == 1


def test_cold_cache_notice_then_warm_silence(tmp_path):
    """A fresh Numba cache compiles (one notice); the next process loads the cache (none)."""
    script = (
        "import numpy as np\n"
        "from gbdt_pwiser import PWiseRObjective\n"
        "y = np.array([2, 1, 0, 0, 2, 0] * 50, dtype=np.int8)\n"
        "g = np.repeat(np.arange(50), 6)\n"
        "obj = PWiseRObjective()\n"
        "for _ in range(2):\n"
        "    obj.grad_hess(np.zeros(y.size), y, group=g)\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                           timeout=900) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stderr.count(_threads.NOTICE) == 1, runs[0].stderr
    # nothing but the notice: no Numba warnings from compiling the kernels
    assert "Warning" not in runs[0].stderr, runs[0].stderr
    assert _threads.NOTICE not in runs[1].stderr, runs[1].stderr
