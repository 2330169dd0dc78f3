"""gbdt_pwiser: BCE + λ·PWiseR (arXiv 2406.02163) for gradient-boosted trees."""

from ._labels import funnel_label, split_funnel_label
from .estimator import CTCVRClassifier
from .objective import EntireSpaceCVRObjective, PWiseRObjective, initial_margin, prepare_data

__version__ = "0.1.0"

__all__ = [
    "PWiseRObjective",
    "EntireSpaceCVRObjective",
    "CTCVRClassifier",
    "funnel_label",
    "split_funnel_label",
    "initial_margin",
    "prepare_data",
    "__version__",
]
