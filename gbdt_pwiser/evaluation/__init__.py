"""Is PWiseR worth it on this log? The evaluation layer: the methods PWiseR competes with and the compare API.

``gbdt_pwiser.compare(log, methods=[...], seeds=[...])`` (a notebook's entry
point) fits each method's models on splits of a log by group and returns a
table of test metrics with differences to a baseline; ``gbdt-pwiser
compare`` (the command line) calls :func:`run_comparison` and prints it.

* ``methods`` — :data:`METHODS` (BCE, the PWiseR chain, conversion-weighted
  BCE, the boosters' ranking objective, the shared booster) and :class:`Model`.
* ``comparison`` — :func:`compare`, :func:`run_comparison`, :class:`Comparison`.
* ``data`` — splitting a log by group and fitting, in memory or on Dask.
* ``pairs`` — the pairs PWiseR has in a test part, and when it cannot support a verdict.
* ``plots`` — ROC, reliability (calibration), λ sweep and trade-off figures.

The metrics themselves are :mod:`gbdt_pwiser.metrics`.
"""

from .comparison import BOOTSTRAP_METRICS, POINT_METRICS, Comparison, bootstrap_sd, compare, fit_plan, run_comparison
from .methods import METHODS, Method, Model, models
from .pairs import pair_counts, support_warning, test_counts

__all__ = [
    "compare",
    "run_comparison",
    "Comparison",
    "METHODS",
    "Method",
    "Model",
    "models",
    "fit_plan",
    "BOOTSTRAP_METRICS",
    "POINT_METRICS",
    "bootstrap_sd",
    "pair_counts",
    "support_warning",
    "test_counts",
]
