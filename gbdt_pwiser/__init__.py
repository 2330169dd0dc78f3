"""gbdt_pwiser: BCE + λ·PWiseR (arXiv 2406.02163) for gradient-boosted trees."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._labels import as_funnel, funnel_label, split_funnel_label
from ._version import __version__
from .exceptions import GroupLayoutError
from .objectives import EntireSpaceCVRObjective, PWiseRObjective, initial_margin, prepare_data

if TYPE_CHECKING:  # pragma: no cover
    from ._show_versions import show_versions
    from .datasets.loaders import load_log
    from .datasets.parquet_log import ParquetLog
    from .evaluation import compare
    from .metrics import evaluate
    from .sklearn import CTCVRClassifier, NoGroupWarning

__all__ = [
    "PWiseRObjective",
    "EntireSpaceCVRObjective",
    "CTCVRClassifier",
    "NoGroupWarning",
    "ParquetLog",
    "GroupLayoutError",
    "evaluate",
    "compare",
    "load_log",
    "funnel_label",
    "split_funnel_label",
    "as_funnel",
    "initial_margin",
    "prepare_data",
    "show_versions",
    "__version__",
]

# The estimator and the evaluation helpers pull in scikit-learn's model machinery; load them
# on first use so that `import gbdt_pwiser` (and a custom objective's first call) stays fast.
_LAZY = {
    "CTCVRClassifier": ".sklearn",
    "NoGroupWarning": ".sklearn",
    "ParquetLog": ".datasets.parquet_log",
    "evaluate": ".metrics",
    "show_versions": "._show_versions",
    "compare": ".evaluation",
    "load_log": ".datasets.loaders",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
