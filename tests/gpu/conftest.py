"""Fixtures of the CUDA kernel tests.

Run them in numba's CUDA simulator (``make test-gpu-sim``:
``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/gpu``) or, without the
variable, on a real GPU. Kernel tests skip when neither is usable; the
error-path tests run everywhere.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def small_blocks():
    """Small CUDA blocks (32 threads) so that small inputs span several blocks."""
    from gbdt_pwiser.kernels import cuda as gpu

    old = gpu.BLOCK_SIZE, gpu.SERIAL_MAX_ROWS
    gpu.BLOCK_SIZE = 32
    yield
    gpu.BLOCK_SIZE, gpu.SERIAL_MAX_ROWS = old
