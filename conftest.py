"""Root conftest: keep `pytest --doctest-modules gbdt_pwiser` collectable without optional extras.

Modules that import an optional dependency at module level are not collected
when it is absent (the floors venv of `make test-floors` has no dask or torch).
"""

import importlib.util

#: Optional top-level modules -> the paths whose import needs them.
_NEEDS = {
    "dask": ["gbdt_pwiser/dask", "gbdt_pwiser/engines/dask", "tests/_dask_helpers.py"],
    "distributed": ["gbdt_pwiser/dask", "gbdt_pwiser/engines/dask", "tests/_dask_helpers.py"],
    "torch": ["gbdt_pwiser/neural/loss.py", "gbdt_pwiser/neural/models.py", "gbdt_pwiser/neural/training.py"],
}

collect_ignore = sorted(
    {path for module, paths in _NEEDS.items() if importlib.util.find_spec(module) is None for path in paths}
)
