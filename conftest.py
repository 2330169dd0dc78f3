"""Root conftest: keep `pytest --doctest-modules gbdt_pwiser` collectable without optional extras."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("dask") is None or importlib.util.find_spec("distributed") is None:
    collect_ignore.append("gbdt_pwiser/dask")  # needs the [dask] extra
    collect_ignore.append("gbdt_pwiser/engines/dask")
