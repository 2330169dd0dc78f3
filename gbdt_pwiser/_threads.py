"""Thread budget of the Numba kernels (set per call, restored after; never at import), and the
one-line notice while they compile on first use.

Every kernel call of the objectives runs inside :func:`numba_threads`. The first one installs a
listener on Numba's ``numba:compile`` event, which Numba raises only when a function is really
compiled (a cache miss: a fresh install, a new Python or Numba), never when it loads the compiled
code from its cache; the first compilation of one of this package's kernels prints one line to
stderr, once per process.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

#: Below this many rows the kernels run on one thread: a parallel region costs more than it
#: saves there, and on a busy machine it waits for a descheduled worker thread.
SERIAL_BELOW_ROWS = 65_536

NOTICE = ("gbdt_pwiser: compiling the Numba kernels for first use (once; later processes load them "
          "from the cache) ...")
_notice = {"installed": False, "printed": False}


def _compile_listener() -> Any:
    from numba.core import event

    class _FirstCompile(event.Listener):
        def on_start(self, ev: Any) -> None:
            if _notice["printed"]:
                return
            disp = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(disp, "py_func", None), "__module__", "") or ""
            if module.startswith("gbdt_pwiser."):
                _notice["printed"] = True
                print(NOTICE, file=sys.stderr, flush=True)

        def on_end(self, ev: Any) -> None:
            pass

    return _FirstCompile()


def _install_compile_notice() -> None:
    if _notice["installed"]:
        return
    _notice["installed"] = True
    from numba.core import event

    event.register("numba:compile", _compile_listener())


@contextlib.contextmanager
def numba_threads(n_jobs: int | None, n_rows: int | None = None) -> Iterator[None]:
    """Run the kernels with ``n_jobs`` threads (1 for small inputs), restoring the caller's setting."""
    _install_compile_notice()
    with _thread_count(n_jobs, n_rows):
        yield


@contextlib.contextmanager
def _thread_count(n_jobs: int | None, n_rows: int | None) -> Iterator[None]:
    small = n_rows is not None and n_rows < SERIAL_BELOW_ROWS
    if n_jobs is None and not small:
        yield
        return
    import numba

    maxt = numba.config.NUMBA_NUM_THREADS
    if small:
        want = 1
    else:
        want = maxt if n_jobs is None or n_jobs < 0 else max(1, min(int(n_jobs), maxt))
    old = numba.get_num_threads()
    if want == old:
        yield
        return
    numba.set_num_threads(want)
    try:
        yield
    finally:
        numba.set_num_threads(old)
