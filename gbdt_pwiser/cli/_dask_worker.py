"""Preloaded into the workers of the command line's local Dask cluster (``--dask-workers``).

A Ctrl-C at the terminal reaches the whole process group: the command catches
it, closes the cluster and exits with status 130. The workers ignore it, so
that each does not print its own ``KeyboardInterrupt`` traceback.
"""

from __future__ import annotations

import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by distributed in each worker process as it starts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
