"""Thread budget of the Numba kernels (set per call, restored after; never at import)."""

from __future__ import annotations

import contextlib
from typing import Iterator

#: Below this many rows the kernels run on one thread: a parallel region costs more than it
#: saves there, and on a busy machine it waits for a descheduled worker thread.
SERIAL_BELOW_ROWS = 65_536


@contextlib.contextmanager
def numba_threads(n_jobs: int | None, n_rows: int | None = None) -> Iterator[None]:
    """Run the kernels with ``n_jobs`` threads (1 for small inputs), restoring the caller's setting."""
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
