"""The one-line notice while the Numba kernels compile on first use (and silence afterwards)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba import njit

from gbdt_pwiser import _threads

ROOT = Path(__file__).resolve().parents[2]


def test_compilation_of_own_kernels_prints_one_line_once(monkeypatch, capsys):
    monkeypatch.setitem(_threads._notice, "printed", False)
    _threads.install_compile_notice()  # (done when the kernels are imported; once per process)

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


def test_read_only_install_compiles_once_into_the_user_cache(tmp_path):
    """A package directory that cannot be written (a system or container install): the first process
    compiles (one notice, nothing else on stderr) into the per-user cache; the next loads it (silent).

    Numba looks for a writable ``__pycache__`` next to the source first, then the per-user cache
    (``$XDG_CACHE_HOME/numba``). Root ignores permission bits (as in CI), so the install below is
    made unwritable by failing Numba's own writability check for every path inside it.
    """
    site = tmp_path / "site"
    shutil.copytree(ROOT / "gbdt_pwiser", site / "gbdt_pwiser", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import numba.core.caching as caching\n"
        "Locator = getattr(caching, 'InTreeCacheLocator', None) or caching._InTreeCacheLocator  # Numba < 0.60\n"
        "_ensure = Locator.ensure_cache_path\n"
        "def _read_only(self):\n"
        f"    if self.get_cache_path().startswith({str(site)!r}):\n"
        "        raise PermissionError('read-only install')\n"
        "    return _ensure(self)\n"
        "Locator.ensure_cache_path = _read_only\n"
        "import json\n"
        "from numba.core import event\n"
        "compiled = []\n"
        "class _Compiles(event.Listener):\n"
        "    def on_start(self, ev):\n"
        "        pass\n"
        "    def on_end(self, ev):\n"
        "        f = ev.data['dispatcher'].py_func\n"
        "        compiled.append([f.__module__, f.__qualname__, str(ev.data['args'])])\n"
        "event.register('numba:compile', _Compiles())\n"
        "import numpy as np\n"
        "import gbdt_pwiser\n"
        f"assert gbdt_pwiser.__file__.startswith({str(site)!r}), gbdt_pwiser.__file__\n"
        "y = np.array([2, 1, 0, 0, 2, 0] * 50, dtype=np.int8)\n"
        "g = np.repeat(np.arange(50), 6)\n"
        "obj = gbdt_pwiser.PWiseRObjective()\n"
        "for _ in range(2):\n"
        "    obj.grad_hess(np.zeros(y.size), y, group=g)\n"
        "print(json.dumps(compiled))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "user-cache"))
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path
        )
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stderr.count(_threads.NOTICE) == 1, runs[0].stderr
    # nothing but the notice: no Numba warnings from compiling the kernels
    assert runs[0].stderr.strip() == _threads.NOTICE, runs[0].stderr
    assert runs[1].stderr == "", runs[1].stderr
    # what the first process compiled: each group function and driver once (called from a parallel
    # loop, every group function was compiled twice before), the exact mode only (the sampled one
    # is chosen when compiling), and the second process compiled nothing at all
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    ours = [tuple(c) for c in first if c[0] in ("gbdt_pwiser.kernels.groups", "gbdt_pwiser.kernels.cpu")]
    assert ours and len(set(ours)) == len(ours), sorted(ours)
    names = {name for _, name, _ in first}
    assert "exact_sq_hinge_group" in names, sorted(names)
    assert not names & {"sampled_group", "exact_pairs_group", "all_pairs_conversion"}, sorted(names)
    assert second == []
    user_cache = list((tmp_path / "user-cache" / "numba").rglob("*.nbi"))
    assert any("cpu" in f.name for f in user_cache), user_cache
    assert not list(site.rglob("*.nbi")), "wrote the cache into the read-only install"
