"""A fitted CTR/CVR model: prediction, scoring, persistence and scikit-learn plumbing.

``_ChainBase`` holds what every estimator shares once it is fitted, whatever
the engine that trained it: the tags, the predict methods of both structures
(a CTR → CVR chain of two boosters, or one shared two-output booster), :meth:`score`,
``save_model``/``load_model`` and the progress bars. Prediction uses the booster
library the model was fitted with (``backend_``, ``structure_``), not the
current parameters. :class:`CTCVRClassifier` adds the parameters and ``fit``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .. import metrics as M
from .._labels import as_funnel
from ..engines import library, limits
from ..engines._inputs import check_X
from ..engines.boosters import BoosterLibrary
from ..objectives import shared_probabilities
from . import _persistence

__all__: list[str] = []


class _ChainBase(ClassifierMixin, BaseEstimator):
    """Prediction, scoring and persistence of a fitted CTR → CVR chain (see :class:`CTCVRClassifier`)."""

    backend: str  # a parameter of the concrete estimators

    # ------------------------------------------------------------------ scikit-learn plumbing
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.categorical = True
        tags.target_tags.required = True
        # The target is a funnel label (0 no click, 1 click only, 2 conversion), not a set of
        # classes; the classifier predicts one binary event, "converts".
        tags.classifier_tags.multi_class = False
        return tags

    def _nthread(self) -> int | None:
        nj = self.n_jobs
        return None if nj is None else (int(nj) if nj > 0 else max(1, (os.cpu_count() or 1) + 1 + int(nj)))

    def _library(self) -> BoosterLibrary:
        """The booster library of the fitted model (the parameters may have changed since)."""
        shared = getattr(self, "structure_", "chain") == "shared"
        return library(getattr(self, "backend_", self.backend), 2 if shared else 1)

    def _round_bar(self, desc: str) -> Any:
        """A tqdm bar over the boosting rounds when ``verbose`` (drawn only on a terminal), else a null context."""
        if not self.verbose:
            return contextlib.nullcontext(None)
        import sys

        from tqdm.auto import tqdm

        # disable=None: tqdm draws only when the stream is a terminal (no escape codes in logs/CI)
        return tqdm(
            total=self.n_estimators,
            desc=desc,
            unit="round",
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=None,
        )

    # ------------------------------------------------------------------ predict
    def _ctr_margin(self, Xc: Any) -> np.ndarray:
        return (
            self._library().predict_margin(self.ctr_booster_, Xc, self.n_rounds_ctr_, self._nthread())
            + self.ctr_init_margin_
        )

    def _predict_all(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(pCTR, pCVR)`` of the fitted model, float64."""
        check_is_fitted(self, "structure_")
        Xc = check_X(self, X, reset=False)
        if self.structure_ == "shared":
            m = self._library().predict_margin(
                self.booster_, self.categorical_codes_.transform(Xc), self.n_rounds_, self._nthread()
            )
            pctr, pcvr, _ = shared_probabilities(m)
        else:
            pctr = expit(self._ctr_margin(Xc))
            if self.cvr_booster_ is None:
                pcvr = np.full(pctr.shape, float(self.cvr_fallback_rate_))
            else:
                u = (
                    self._library().predict_margin(self.cvr_booster_, Xc, self.n_rounds_cvr_, self._nthread())
                    + self.cvr_init_margin_
                )
                pcvr = expit(u)
        calibration = getattr(self, "calibration_", None)
        if calibration is not None:
            pctr, pcvr = calibration.apply(pctr, pcvr)
        return np.asarray(pctr, dtype=np.float64), np.asarray(pcvr, dtype=np.float64)

    # ------------------------------------------------------------------ inspect
    def _feature_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return [str(c) for c in names] if names is not None else [f"x{j}" for j in range(self.n_features_in_)]

    def _boosters(self) -> list[tuple[str, Any, int]]:
        """``(name, booster or None, rounds used)`` of each booster of the fitted model."""
        if self.structure_ == "shared":
            return [("shared", self.booster_, self.n_rounds_)]
        return [("ctr", self.ctr_booster_, self.n_rounds_ctr_), ("cvr", self.cvr_booster_, self.n_rounds_cvr_)]

    def feature_importances(self) -> pd.DataFrame:
        """Total gain and number of splits of each feature in each booster, as one DataFrame.

        Columns ``ctr_gain``, ``ctr_split``, ``cvr_gain``, ``cvr_split`` (the
        shared booster: ``shared_gain``, ``shared_split``), one row per feature;
        counted over the rounds the model predicts with. A CVR booster that was
        not trained (no conversions) has NaN columns.

        Examples
        --------
        >>> import numpy as np
        >>> from gbdt_pwiser import CTCVRClassifier
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(300, 3)), rng.choice([0, 1, 2], size=300, p=[0.7, 0.2, 0.1])
        >>> model = CTCVRClassifier(n_estimators=3, n_jobs=1).fit(X, y, group=np.repeat(np.arange(30), 10))
        >>> model.feature_importances().columns.tolist()
        ['ctr_gain', 'ctr_split', 'cvr_gain', 'cvr_split']
        """
        check_is_fitted(self, "structure_")
        lib, d = self._library(), self.n_features_in_
        cols: dict[str, np.ndarray] = {}
        for name, booster, rounds in self._boosters():
            gain, split = (
                (np.full(d, np.nan), np.full(d, np.nan)) if booster is None else lib.importances(booster, d, rounds)
            )
            cols[f"{name}_gain"], cols[f"{name}_split"] = gain, split
        return pd.DataFrame(cols, index=pd.Index(self._feature_names(), name="feature"))

    def predict_contributions(self, X: Any) -> dict[str, pd.DataFrame]:
        """Per-row contributions of each feature to the pCTR and pCVR margins (the boosters' own SHAP).

        XGBoost's ``pred_contribs=True`` / LightGBM's ``pred_contrib=True``, one
        DataFrame per booster (``"ctr"``, ``"cvr"``) with a column per feature
        and ``"bias"``; each row sums to that booster's raw margin (log-odds),
        the starting margin included in ``"bias"``. They explain the boosters,
        before any ``calibration`` map. Not available for ``structure="shared"``
        (XGBoost has no SHAP for multi-output trees).

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.special import expit
        >>> from gbdt_pwiser import CTCVRClassifier
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(300, 3)), rng.choice([0, 1, 2], size=300, p=[0.7, 0.2, 0.1])
        >>> model = CTCVRClassifier(n_estimators=3, n_jobs=1).fit(X, y, group=np.repeat(np.arange(30), 10))
        >>> parts = model.predict_contributions(X)
        >>> parts["ctr"].columns.tolist()
        ['x0', 'x1', 'x2', 'bias']
        >>> bool(np.allclose(expit(parts["ctr"].sum(axis=1)), model.predict_ctr(X)))
        True
        """
        check_is_fitted(self, "structure_")
        if self.structure_ == "shared":
            limits.refuse("any", "shared:contributions")
        Xc = check_X(self, X, reset=False)
        lib, columns = self._library(), [*self._feature_names(), "bias"]
        out = {}
        for name, booster, rounds in self._boosters():
            if booster is None:  # no CVR booster: the constant fallback rate is all bias
                c = np.zeros((Xc.shape[0], len(columns)))
                c[:, -1] = logit(self.cvr_fallback_rate_)
            else:
                c = lib.contributions(booster, Xc, rounds, self._nthread())
                c[:, -1] += getattr(self, f"{name}_init_margin_")
            out[name] = pd.DataFrame(c, columns=columns, index=getattr(X, "index", None))
        return out

    def predict_ctr(self, X: Any) -> np.ndarray:
        """pCTR: probability of a click per exposure.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix or pandas.DataFrame of shape (n, d)
            Features, laid out as in :meth:`fit`.

        Returns
        -------
        pctr : ndarray of shape (n,), float64

        Examples
        --------
        >>> import numpy as np
        >>> from gbdt_pwiser import CTCVRClassifier
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(200, 3)), rng.choice([0, 1, 2], size=200, p=[0.7, 0.2, 0.1])
        >>> model = CTCVRClassifier(n_estimators=3, n_jobs=1).fit(X, y, group=np.repeat(np.arange(20), 10))
        >>> pctr, pcvr = model.predict_ctr(X), model.predict_cvr(X)
        >>> bool(np.array_equal(model.predict_ctcvr(X), pctr * pcvr))
        True
        """
        return self._predict_all(X)[0]

    def predict_cvr(self, X: Any) -> np.ndarray:
        """pCVR: probability of a conversion given a click, shape (n,) (see :meth:`predict_ctr`).

        The constant ``cvr_fallback_rate_`` when the training data had no conversion.
        """
        return self._predict_all(X)[1]

    def predict_ctcvr(self, X: Any) -> np.ndarray:
        """pCTCVR = pCTR · pCVR: probability of a conversion per exposure, shape (n,) (see :meth:`predict_ctr`)."""
        pctr, pcvr = self._predict_all(X)
        return pctr * pcvr

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[1 - pCTCVR, pCTCVR]`` per row, shape (n, 2) (columns follow ``classes_``)."""
        p = self.predict_ctcvr(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class (1 = converts): the argmax of :meth:`predict_proba`."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: npt.ArrayLike | None = None) -> float:
        """CTCVR AUC: AUC of pCTCVR against conversions over all exposures (docs/mathematics.md §6).

        Parameters
        ----------
        X : array-like, scipy.sparse matrix or pandas.DataFrame of shape (n, d)
            Features.
        y : array-like of shape (n,) or (n, 2)
            Funnel labels or ``[click, conversion]``, as in :meth:`fit`.
        sample_weight : array-like of shape (n,), optional
            Row weights of the AUC.

        Returns
        -------
        auc : float
            NaN when ``y`` has a single conversion class. Same as
            :data:`gbdt_pwiser.metrics.ctcvr_auc_scorer`.

        Examples
        --------
        >>> import numpy as np
        >>> from gbdt_pwiser import CTCVRClassifier
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(200, 3)), rng.choice([0, 1, 2], size=200, p=[0.7, 0.2, 0.1])
        >>> model = CTCVRClassifier(n_estimators=3, n_jobs=1).fit(X, y, group=np.repeat(np.arange(20), 10))
        >>> from gbdt_pwiser.metrics import conversion_auc
        >>> model.score(X, y) == conversion_auc(model.predict_ctcvr(X), y)
        True
        """
        return M.conversion_auc(self.predict_ctcvr(X), as_funnel(y), sample_weight)

    # ------------------------------------------------------------------ persistence
    def save_model(self, path: str | os.PathLike[str]) -> None:
        """Save the fitted model: native boosters + ``meta.json``, to a directory or a ``.zip``.

        The boosters are stored in their native formats (``ctr.ubj``/``cvr.ubj``
        for XGBoost, ``ctr.txt``/``cvr.txt`` for LightGBM), so they can also be
        loaded by the libraries alone; the parameters and fitted metadata go to
        ``meta.json``. Load with :meth:`load_model`.

        Parameters
        ----------
        path : str or path-like
            A directory (created if needed), or a file ending in ``.zip``.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from gbdt_pwiser import CTCVRClassifier
        >>> rng = np.random.default_rng(0)
        >>> X, y = rng.normal(size=(200, 3)), rng.choice([0, 1, 2], size=200, p=[0.7, 0.2, 0.1])
        >>> model = CTCVRClassifier(n_estimators=3, n_jobs=1).fit(X, y, group=np.repeat(np.arange(20), 10))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     model.save_model(f"{tmp}/model.zip")
        ...     again = CTCVRClassifier.load_model(f"{tmp}/model.zip")
        >>> bool(np.array_equal(again.predict_proba(X), model.predict_proba(X)))
        True
        """
        _persistence.save_model(self, path)

    @classmethod
    def load_model(cls, path: str | os.PathLike[str]) -> Any:
        """Load a model written by :meth:`save_model` (directory or ``.zip``; see its example).

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        model : a fitted estimator of this class
        """
        return _persistence.load_model(cls, path)
