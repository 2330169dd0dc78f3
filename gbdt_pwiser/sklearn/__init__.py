"""scikit-learn estimators: the chained CTR→CVR classifier, and the scorers of :mod:`gbdt_pwiser.metrics`.

``_classifier`` holds the estimator, ``_shared`` its structure="shared" fit/predict, ``_backends`` the XGBoost/LightGBM
adapters (the interface other engines reuse), ``_inputs`` the feature checks
and ``_persistence`` the saved-model format.
"""

from ..metrics import ctcvr_auc_scorer, ctr_auc_scorer, cvr_auc_scorer, pctr_conversion_auc_scorer
from ._classifier import CTCVRClassifier, NoGroupWarning
from ._persistence import ModelFileError

__all__ = [
    "CTCVRClassifier",
    "NoGroupWarning",
    "ModelFileError",
    "ctr_auc_scorer",
    "cvr_auc_scorer",
    "ctcvr_auc_scorer",
    "pctr_conversion_auc_scorer",
]
