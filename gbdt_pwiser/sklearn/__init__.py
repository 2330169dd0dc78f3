"""scikit-learn estimators: the CTR/CVR classifier, and the scorers of :mod:`gbdt_pwiser.metrics`.

``_classifier`` holds :class:`CTCVRClassifier` (parameters and ``fit``), ``_base``
what every fitted model shares (predict, score, save/load), ``_drivers`` the one
fit driver of the chain and of the shared booster (on any engine of
:mod:`gbdt_pwiser.engines`), ``_encode`` the category codes of the shared booster
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
