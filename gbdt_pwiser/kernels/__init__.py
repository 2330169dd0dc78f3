"""The mathematics: Numba kernels of the objectives (``cpu``: ``@njit`` drivers; ``cuda``: numba-cuda twins).

Nothing here validates input; the public entry points in :mod:`gbdt_pwiser.objectives`
do that before any kernel runs.
"""
