"""The objectives' threads: how many, and the pool that runs the kernels' parts on them; the
one-line notice while the kernels compile on first use.

**Why a pool of our own.** The kernels are plain ``@njit(nogil=True)`` functions over a range of
rows or groups (:mod:`gbdt_pwiser.kernels.cpu`); the drivers split a pass into one part per thread
and run the parts with :func:`run_parts`: part 0 on the calling thread, the others on a pool of
Python threads that sleep on a lock between calls. No Numba threading layer is started. Numba's
``omp`` layer (the default where libgomp is present) is an OpenMP team whose threads spin-wait
for milliseconds after each parallel region (libgomp's default ``GOMP_SPINCOUNT``: 7-10 ms of CPU
per region measured here, ``benchmarks/bench_threads.py``); XGBoost's wheels bring their own
libgomp, so its team and Numba's are two pools, and each pool's spinning threads ran on the cores
the other needed: a 2-thread XGBoost fit with the objective on Numba's 2 threads cost 1.66x native
(issue #23). The pool's threads sleep as soon as a part is done, so the booster's parallel regions
find its cores free; the parts are fixed ranges, so the results do not depend on the thread count.

**How many.** :func:`resolve_threads`: ``n_jobs`` when it is given (``-1``: every core this
process may use), else the booster's threads when the adapters know them (XGBoost: the
``DMatrix``'s ``nthread``; LightGBM: ``num_threads`` in the ``Dataset``'s parameters), else every
core (what the boosters use by default); at most one thread per ``ROWS_PER_THREAD`` rows, so that
handing a part to a thread (~10-30 µs) stays small beside its work (≥ 0.2 ms).

**The compile notice.** The first call installs a listener on Numba's ``numba:compile`` event,
which Numba raises only when a function is really compiled (a cache miss: a fresh install, a new
Python or Numba), never when it loads the compiled code from its cache; the first compilation of
one of this package's kernels prints one line to stderr, once per process.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: A pass takes at most one thread per this many rows (one below twice as many): handing a part to a
#: thread costs ~10-30 µs (``benchmarks/bench_threads.py``), a part of this many rows 0.2-0.5 ms.
ROWS_PER_THREAD = 65_536

NOTICE = "gbdt_pwiser: compiling the Numba kernels for first use (once; later processes load them from the cache) ..."
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


def install_compile_notice() -> None:
    """Install the first-compilation notice (once per process; called before any kernel runs)."""
    if _notice["installed"]:
        return
    _notice["installed"] = True
    from numba.core import event

    event.register("numba:compile", _compile_listener())


# --------------------------------------------------------------------------- how many threads


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_threads(n_jobs: int | None, n_rows: int | None = None, booster: int | None = None) -> int:
    """Threads for one pass: ``n_jobs`` (``-1``: every core), else ``booster`` (the booster's
    threads, when known), else every core; at most one per ``ROWS_PER_THREAD`` rows.

    Examples
    --------
    >>> from gbdt_pwiser._threads import resolve_threads
    >>> resolve_threads(4, 1_000_000), resolve_threads(None, 1_000_000, booster=2), resolve_threads(4, 100)
    (4, 2, 1)
    >>> resolve_threads(64, 1_000_000)  # 15 parts of 66,666 rows
    15
    """
    want = n_jobs if n_jobs is not None else booster
    want = available_cores() if want is None or want < 0 else max(1, int(want))
    if n_rows is not None:
        want = min(want, max(1, n_rows // ROWS_PER_THREAD))
    return want


# --------------------------------------------------------------------------- the pool


_pool: dict[str, Any] = {"executor": None, "size": 0}
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if _pool["executor"] is None or _pool["size"] < workers:
            old = _pool["executor"]
            _pool["executor"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gbdt_pwiser")
            _pool["size"] = workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool["executor"]


def _forget_pool() -> None:  # a forked child has none of the parent's threads
    _pool["executor"] = None
    _pool["size"] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run_parts(part: Callable[[int], Any], n_parts: int) -> None:
    """Run ``part(p)`` for ``p`` in ``range(n_parts)``, part 0 on the calling thread and the others
    on the pool, and return when all are done (the first exception raised, after all finished).

    The parts must write disjoint outputs; they run Numba functions compiled with ``nogil=True``,
    so they run at the same time.

    Examples
    --------
    >>> from gbdt_pwiser._threads import run_parts
    >>> out = [0] * 3
    >>> def part(p):
    ...     out[p] = p * p
    >>> run_parts(part, 3)
    >>> out
    [0, 1, 4]
    """
    install_compile_notice()
    if n_parts <= 1:
        if n_parts == 1:
            part(0)
        return
    pool = _executor(n_parts - 1)
    futures: list[Future] = [pool.submit(part, p) for p in range(1, n_parts)]
    error: BaseException | None = None
    try:
        part(0)
    except BaseException as exc:  # re-raised below, after the other parts finished
        error = exc
    for f in futures:
        failed = f.exception()
        if error is None and failed is not None:
            error = failed
    if error is not None:
        raise error
