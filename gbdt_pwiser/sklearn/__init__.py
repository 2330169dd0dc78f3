"""scikit-learn estimators: the chained CTR→CVR classifier and its scorers."""

from ._classifier import (
    CTCVRClassifier,
    ctcvr_auc_scorer,
    ctr_auc_scorer,
    cvr_auc_scorer,
    pctr_conversion_auc_scorer,
)

__all__ = [
    "CTCVRClassifier",
    "ctr_auc_scorer",
    "cvr_auc_scorer",
    "ctcvr_auc_scorer",
    "pctr_conversion_auc_scorer",
]
