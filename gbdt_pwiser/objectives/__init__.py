"""The loss side: custom objectives for XGBoost, LightGBM and their scikit-learn wrappers."""

from .._validation import NoConversionWarning
from ._prepare import PreparedData
from .entire_space import EntireSpaceCVRObjective
from .multitask import SharedCTCVRObjective, initial_margins, shared_probabilities
from .pwiser import PWiseRObjective, initial_margin, prepare_data

__all__ = [
    "PWiseRObjective",
    "EntireSpaceCVRObjective",
    "SharedCTCVRObjective",
    "PreparedData",
    "NoConversionWarning",
    "initial_margin",
    "initial_margins",
    "prepare_data",
    "shared_probabilities",
]
