"""Optional dependencies: import one, or raise an ImportError that names the extra installing it.

The core install (``pip install gbdt-pwiser``) computes: objectives, estimator,
metrics, the simulator. File readers need pyarrow (the ``parquet`` extra) and
the command line's plots need matplotlib (the ``cli`` extra, which also brings
pyarrow); see ``docs/dependencies.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingOptionalDependency", "require"]


class MissingOptionalDependency(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it.

    Attributes
    ----------
    package : str
        The missing top-level module (``"pyarrow"``).
    extra : str
        The extra of gbdt-pwiser that installs it (``"parquet"``).
    feature : str
        What needed it (``"load_aliexpress"``).
    """

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        self.feature = feature
        super().__init__(
            f"{feature} needs {package}, which is not installed: pip install 'gbdt-pwiser[{extra}]'", name=package
        )


def require(package: str, *, extra: str, feature: str) -> ModuleType:
    """Import the top-level module ``package``, or raise :class:`MissingOptionalDependency`.

    Only the absence of ``package`` itself is translated: an installed package
    whose own import fails (a broken install) raises its original error.

    Examples
    --------
    >>> from gbdt_pwiser._optional import require
    >>> require("numpy", extra="none", feature="this example").__name__
    'numpy'
    >>> require("no_such_package_xyz", extra="demo", feature="this example")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gbdt_pwiser._optional.MissingOptionalDependency: this example needs ...: pip install 'gbdt-pwiser[demo]'
    """
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name != package:
            raise
        raise MissingOptionalDependency(package, extra, feature) from exc
