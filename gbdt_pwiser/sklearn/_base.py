"""The fitted CTR → CVR chain: prediction, scoring, persistence and scikit-learn plumbing.

``_ChainBase`` holds what every estimator of the chain shares once it has two
boosters (``ctr_booster_``, ``cvr_booster_``) and a backend from
:mod:`._backends`: the tags, the predict methods, :meth:`score`,
``save_model``/``load_model`` and the progress bars. :class:`CTCVRClassifier`
adds the parameters and ``fit``; an estimator on another engine (Dask, a shared
multi-output booster) subclasses it the same way, overriding ``_predict_all``
where its boosters predict differently.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .. import metrics as M
from .._labels import as_funnel
from . import _persistence
from ._backends import BACKENDS, Backend
from ._inputs import check_X

__all__: list[str] = []


class _ChainBase(ClassifierMixin, BaseEstimator):
    """Prediction, scoring and persistence of a fitted CTR → CVR chain (see :class:`CTCVRClassifier`)."""

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

    def _backend(self) -> Backend:
        """The backend of the ``backend`` parameter (what the next ``fit`` uses)."""
        return BACKENDS[self.backend]()

    def _start_fit(self, structure: str) -> None:
        """Record the backend and structure this fit uses (``backend_``, ``structure_``).

        Prediction and ``save_model`` read these fitted attributes, not the
        parameters: ``set_params(backend=...)`` after ``fit`` changes the next
        fit only, as for any scikit-learn estimator.
        """
        self.backend_, self.structure_ = self.backend, structure

    def _fitted_backend(self) -> Backend:
        """The backend the model was fitted with."""
        return BACKENDS[self.backend_]()

    def _round_bar(self, desc: str) -> Any:
        """A tqdm bar over the boosting rounds when ``verbose`` (drawn only on a terminal), else a null context."""
        if not self.verbose:
            return contextlib.nullcontext(None)
        import sys

        from tqdm.auto import tqdm

        # disable=None: tqdm draws only when the stream is a terminal (no escape codes in logs/CI)
        return tqdm(total=self.n_estimators, desc=desc, unit="round", leave=False, file=sys.stderr,
                    dynamic_ncols=True, disable=None)

    # ------------------------------------------------------------------ predict
    def _ctr_margin(self, Xc: Any) -> np.ndarray:
        return (self._fitted_backend().predict_margin(self.ctr_booster_, Xc, self.n_rounds_ctr_, self._nthread())
                + self.ctr_init_margin_)

    def _predict_all(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "structure_", "chain") == "shared":
            from ._shared import predict_shared

            return predict_shared(self, X)
        check_is_fitted(self, "ctr_booster_")
        Xc = check_X(self, X, reset=False)
        pctr = expit(self._ctr_margin(Xc))
        if self.cvr_booster_ is None:
            pcvr = np.full(pctr.shape, float(self.cvr_fallback_rate_))
        else:
            u = (self._fitted_backend().predict_margin(self.cvr_booster_, Xc, self.n_rounds_cvr_, self._nthread())
                 + self.cvr_init_margin_)
            pcvr = expit(u)
        return np.asarray(pctr, dtype=np.float64), np.asarray(pcvr, dtype=np.float64)

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


