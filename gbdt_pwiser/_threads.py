"""The objectives' threads: how many, and who runs the kernels' parts on them (the booster's own
OpenMP team inside training, a pool of our own elsewhere); the one-line notice while the kernels
compile on first use.

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

**Inside training: on the booster's own OpenMP threads.** The pool's threads sleep, but the
booster's do not: after each of its parallel regions a booster's OpenMP threads spin for
milliseconds before they sleep (libgomp's default), and the objective runs right after the region
that computed the margins. On T cores, T - 1 of them still spun while the objective ran, so the
pool's parts shared cores with spinning threads and a 2-part pass took as long as one thread's
(2.5 ms against 1.5 ms standalone, dense exact, 300k rows, in a 2-thread XGBoost fit). Inside
``xgb.train``/``lgb.train`` the adapters therefore run the parts on the booster's own team
(:class:`OpenMPTeam`: ``GOMP_parallel`` of the OpenMP runtime the booster's library links to,
looked up through that library): the spinning threads take the parts at once, and spin again,
ready for the booster's next region. Each team thread takes the next part that is left (the
parts are the same fixed ranges), so the results are the same bits whichever thread runs a part
and however many threads the runtime gives. A region has the booster's number of threads (a
region of another size would resize the booster's team every round). Where a booster's library
has no ``GOMP_parallel`` (a build without OpenMP, MSVC's runtime), the pool runs the parts.

Each part still starts in Python (pick the part, call the kernel), one thread at a time under the
GIL: 17-40 µs a part measured on 16 cores (``benchmarks/bench_threads.py``), which is why a part
has at least ``ROWS_PER_THREAD`` rows and why a pass on 2M rows runs at a parallel efficiency of
0.4-0.5 on 16 threads (0.9-1.0 on 2 and 4). Part of the team's cost was a Python thread state
built for each thread at every region; the team's threads now keep theirs
(:func:`_keep_thread_state`): a region of 2 trivial parts takes 37 µs instead of 70-75 µs.

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

import ctypes
import functools
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, types
from numba.extending import intrinsic

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
    _kept.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


# --------------------------------------------------------------------------- the booster's team

#: ``void (*)(void *)``: the Python side of a region, which a team thread with a part calls
_TEAM_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
#: ``void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags)``;
#: CFUNCTYPE, so ctypes releases the GIL for the call
_GOMP_PARALLEL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint)
#: the block a region's threads read: parts, address of the runtime's omp_get_thread_num, address
#: of the Python side (:data:`_TEAM_FN`), the job's key
_N_PARTS, _THREAD_NUM, _PYTHON_SIDE, _KEY = range(4)


@intrinsic
def _call_int_fn(typingctx: Any, address: Any) -> Any:
    """``int f(void)`` at ``address``: the runtime's ``omp_get_thread_num``."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty = ir.FunctionType(ir.IntType(32), [])
        return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])

    return types.int32(types.int64), codegen


@intrinsic
def _call_void_fn(typingctx: Any, address: Any, data: Any) -> Any:
    """``void f(void *)`` at ``address``: the Python side of the region."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [args[1]])
        return context.get_dummy_value()

    return types.void(types.int64, types.voidptr), codegen


def _team_entry(data: Any) -> None:
    # every thread of the region runs this, without the GIL; only threads numbered below the number
    # of parts go on to Python (the others return at once: a region has the booster's team size,
    # and a thread entering Python only to find no part would wait for the GIL for nothing)
    block = carray(data, (4,), dtype=np.int64)
    # @intrinsic: Numba passes the typing context, the stubs count it as an argument
    if _call_int_fn(block[_THREAD_NUM]) < block[_N_PARTS]:  # type: ignore[call-arg]
        _call_void_fn(block[_PYTHON_SIDE], data)


@functools.cache
def _entry_address() -> int:
    """Address of :func:`_team_entry` compiled as a C function (compiled once, cached by Numba)."""
    return _address(cfunc(types.void(types.voidptr), cache=True)(_team_entry).address)


def _address(value: Any) -> int:
    """A function's (or a block's) address (``ctypes`` gives None for a null pointer)."""
    address = ctypes.cast(value, ctypes.c_void_p).value if not isinstance(value, int) else value
    if not address:
        raise AttributeError("a null function pointer")
    return int(address)


class OpenMPTeam:
    """Run the parts of a pass on an OpenMP runtime's own threads (one parallel region a pass).

    ``library``: a loaded shared library (``ctypes.CDLL``) linked to the runtime; its
    ``GOMP_parallel`` and ``omp_get_thread_num`` are looked up through it (the dynamic linker
    searches the library and then its dependencies, so they are those of the runtime *that*
    library uses: XGBoost's wheels bring their own libgomp, LightGBM's use the system's). libgomp,
    LLVM's libomp and Intel's libiomp5 all export both. The region runs on the calling thread's
    team, the one whose threads the booster's last region left spinning when the objective is
    called from the booster's update.

    Every thread of the region runs a small compiled function; the threads numbered below the
    number of parts then take the GIL only to pick the next part and call it (the parts release
    it in their ``nogil`` kernels). Each part is taken by exactly one thread, whichever it is.
    Exceptions are kept and the first is raised once the region has ended.

    Examples
    --------
    >>> import ctypes.util
    >>> from gbdt_pwiser._threads import OpenMPTeam
    >>> team = OpenMPTeam(ctypes.CDLL(ctypes.util.find_library("gomp")))
    >>> out = [0] * 4
    >>> def part(p):
    ...     out[p] = p + 1
    >>> team.run(part, 4)
    >>> out
    [1, 2, 3, 4]
    """

    def __init__(self, library: Any) -> None:
        # AttributeError: a runtime without them (no OpenMP)
        self._parallel = _GOMP_PARALLEL(_address(library.GOMP_parallel))
        self._thread_num = _address(library.omp_get_thread_num)
        self._jobs: dict[int, tuple[Callable[[], int], Callable[[int], Any], int, list, int]] = {}
        self._keys = itertools.count(1)
        self._fn = _TEAM_FN(self._body)  # kept alive as long as the team
        self._fn_address = _address(self._fn)

    def _body(self, data: int | None) -> None:
        key = ctypes.cast(_address(data), ctypes.POINTER(ctypes.c_int64))[_KEY]
        take, part, n_parts, errors, caller = self._jobs[key]
        if (tid := threading.get_native_id()) != caller and tid not in _kept:
            _keep_thread_state(tid)
        try:
            while (p := take()) < n_parts:
                part(p)
        except BaseException as exc:  # raised by run() after the region (the team must finish it)
            errors.append(exc)

    def run(self, part: Callable[[int], Any], n_parts: int, threads: int | None = None) -> None:
        """``part(p)`` for every ``p < n_parts``, on a region of ``threads`` threads (default ``n_parts``;
        threads numbered from ``n_parts`` on return at once)."""
        key = next(self._keys)
        errors: list[BaseException] = []
        self._jobs[key] = (itertools.count().__next__, part, n_parts, errors, threading.get_native_id())
        block = np.array([n_parts, self._thread_num, self._fn_address, key], dtype=np.int64)
        try:
            self._parallel(_entry_address(), block.ctypes.data, n_parts if threads is None else threads, 0)
        finally:
            del self._jobs[key]
        if errors:
            raise errors[0]


#: native ids of the threads whose Python thread state is kept between regions (see below)
_kept: set[int] = set()


def _keep_thread_state(tid: int) -> None:
    """Keep the Python thread state of this thread, one of a runtime's OpenMP threads (not the
    Python thread that opened the region), between regions; called with the GIL held, once per
    thread.

    A ctypes callback on a thread that Python did not start creates a thread state for the call
    and deletes it on return, so every region made each team thread but the caller build a new one
    before it could take a part: 35-40 µs of a 2-part region's 70-75 µs (trivial parts, measured
    here). One ``PyGILState_Ensure`` that is never released keeps the count of the thread's
    ``PyGILState`` calls above zero, so the state outlives the callback, as pybind11 does for the
    threads it adopts. A forked child forgets the ids (:func:`_forget_pool`).
    """
    _kept.add(tid)
    ensure = ctypes.pythonapi.PyGILState_Ensure
    ensure.restype = ctypes.c_int
    ensure.argtypes = []
    ensure()


_teams: dict[str, OpenMPTeam | None] = {}
#: False: the pool runs the parts inside training too (the benchmarks compare the two)
USE_BOOSTER_TEAMS = True


def booster_team(library: str | None) -> OpenMPTeam | None:
    """The OpenMP team of a booster library (``"xgboost"``, ``"lightgbm"``), None where it has none
    (not imported, or no ``GOMP_parallel`` in its runtime): then the pool runs the parts."""
    if library is None or not USE_BOOSTER_TEAMS:
        return None
    if library not in _teams:
        module = {"xgboost": "xgboost.core", "lightgbm": "lightgbm.basic"}.get(library)
        lib = getattr(sys.modules.get(module or ""), "_LIB", None)  # the booster's loaded ctypes.CDLL
        try:
            _teams[library] = None if lib is None else OpenMPTeam(lib)
        except AttributeError:  # a runtime without GOMP_parallel
            _teams[library] = None
    return _teams[library]


_local = threading.local()


@contextmanager
def parts_on(team: OpenMPTeam | None, threads: int | None = None) -> Iterator[None]:
    """Within the block, :func:`run_parts` on this thread runs the parts on ``team`` (None: the pool),
    in regions of ``threads`` threads: the team's size, the booster's threads (None: every core, the
    boosters' default). A region of another size would resize the booster's team, every round."""
    before = getattr(_local, "team", None)
    _local.team = None if team is None else (team, threads or available_cores())
    try:
        yield
    finally:
        _local.team = before


def run_parts(part: Callable[[int], Any], n_parts: int) -> None:
    """Run ``part(p)`` for ``p`` in ``range(n_parts)`` and return when all are done (the first
    exception raised, after all finished): on the booster's team inside :func:`parts_on`, else
    part 0 on the calling thread and the others on the pool.

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
    on = getattr(_local, "team", None)
    if on is not None:
        team, size = on
        team.run(part, n_parts, size)
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
