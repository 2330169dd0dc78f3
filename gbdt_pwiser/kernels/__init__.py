"""The mathematics: Numba kernels of the objectives.

``scalars`` (per row, per pair) and ``groups`` (per group): the mathematics, written once and
compiled for both targets;
``cpu``: the ``@njit(parallel=True)`` drivers and CPU-only parts; ``cuda``: the numba-cuda kernels
(compiled on first use; importing touches no CUDA). Nothing here validates input; the public entry
points in :mod:`gbdt_pwiser.objectives` do that before any kernel runs.
"""
