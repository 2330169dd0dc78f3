"""The loss side: custom objectives for XGBoost, LightGBM and their scikit-learn wrappers."""

from ._prepare import PreparedData
from .entire_space import EntireSpaceCVRObjective
from .multitask import SharedCTCVRObjective, initial_margins, shared_probabilities
from .pwiser import PWiseRObjective, initial_margin, prepare_data

__all__ = ["PWiseRObjective", "EntireSpaceCVRObjective", "PreparedData", "initial_margin", "prepare_data",
           "SharedCTCVRObjective", "initial_margins", "shared_probabilities"]
