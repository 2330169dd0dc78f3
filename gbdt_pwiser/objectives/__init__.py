"""The loss side: custom objectives for XGBoost, LightGBM and their scikit-learn wrappers."""

from .._validation import NoConversionWarning
from ._prepare import PreparedData
from .entire_space import EntireSpaceCVRObjective
from .pwiser import PWiseRObjective, initial_margin, prepare_data

__all__ = ["NoConversionWarning", "PWiseRObjective", "EntireSpaceCVRObjective", "PreparedData", "initial_margin", "prepare_data"]
