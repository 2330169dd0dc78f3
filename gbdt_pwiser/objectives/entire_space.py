"""``EntireSpaceCVRObjective``: the entire-space (ESMM-style) CVR objective for trees (docs/mathematics.md §5)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._defaults import HESSIAN_FLOOR
from .._validation import check_ctr_prob, check_device, check_labels, check_margin, check_n_jobs, check_weight
from ..kernels import cpu as K
from ..kernels import passes as KP
from ._adapters import _CustomObjective

__all__ = ["EntireSpaceCVRObjective", "check_ctr_prob"]  # check_ctr_prob: re-exported from _validation


class _ESMMData:
    def __init__(self, y: np.ndarray, w: np.ndarray | None) -> None:
        self.n = y.size
        self.y = y
        self.has_w = w is not None
        self.w = w if w is not None else np.zeros(0)


class EntireSpaceCVRObjective(_CustomObjective):
    """Entire-space CVR objective: ESMM for trees (docs/mathematics.md §5).

    Trains the CVR booster on *all* exposures with the loss
    ``BCE(pCTR_i · σ(u_i), conversion_i)`` on its margin ``u``, where pCTR
    comes from an already trained CTR model and stays fixed. pCVR then means
    P(conversion | click) over the whole exposure space, which removes the
    sample-selection bias of training on clicked rows only.

    Gradient ``-v (1 - q) + (1 - v) a q (1 - q) / (1 - a q)`` with
    ``a = pCTR``, ``q = σ(u)``; Hessian: the Fisher information
    ``a q (1 - q)² / (1 - a q)`` (non-negative; the exact second derivative can
    be negative for ``v = 0``), floored at 1e-16.

    Parameters
    ----------
    ctr_prob : array-like of shape (n,), optional
        pCTR of the training rows, used by the XGBoost/LightGBM adapters.
        :meth:`grad_hess` can take it per call instead.
    device : {"cpu", "cuda"}, default="cpu"
    n_jobs : int, optional
        Threads for the CPU kernel; ``None``: the booster's inside training, else every core
        (as :class:`~gbdt_pwiser.objectives.PWiseRObjective`'s ``n_jobs``).

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser import EntireSpaceCVRObjective
    >>> obj = EntireSpaceCVRObjective()
    >>> g, h = obj.grad_hess(np.zeros(3), [0, 1, 2], ctr_prob=[0.1, 0.5, 0.5])
    >>> bool(np.all(h > 0)), round(float(g[2]), 3)
    (True, -0.5)
    """

    _param_names: tuple[str, ...] = ("ctr_prob", "device", "n_jobs")

    def __init__(self, ctr_prob: npt.ArrayLike | None = None, device: str = "cpu", n_jobs: int | None = None) -> None:
        self.ctr_prob = ctr_prob
        self.device = device
        self.n_jobs = n_jobs
        self._check_params()
        self._reset_adapter_state()

    def _check_params(self) -> None:
        check_device(self.device)
        check_n_jobs(self.n_jobs)

    def _prepare(self, y: np.ndarray, w: np.ndarray | None, ptr: np.ndarray) -> _ESMMData:
        return _ESMMData(y, w)

    def _ctr(self, ctr_prob: Any, n: int) -> np.ndarray:
        if ctr_prob is None:
            ctr_prob = self.ctr_prob
        if ctr_prob is None:
            raise ValueError("ctr_prob (pCTR of every row) is required by the entire-space CVR objective")
        cached = getattr(self, "_ctr_cache", None)
        if cached is not None and cached[0] is ctr_prob:
            return cached[1]
        a = check_ctr_prob(ctr_prob, n)
        self._ctr_cache = (ctr_prob, a)
        return a

    def grad_hess(
        self,
        margin: npt.ArrayLike,
        y: npt.ArrayLike,
        ctr_prob: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Fisher Hessian w.r.t. the CVR margins.

        Parameters
        ----------
        margin : array-like of shape (n,)
            CVR margins ``u``.
        y : array-like of shape (n,)
            Funnel labels; conversions are ``y == 2``.
        ctr_prob : array-like of shape (n,), optional
            pCTR per row (defaults to the constructor's ``ctr_prob``).
        weight : array-like of shape (n,), optional
        """
        self._check_params()
        z = check_margin(margin)
        lab = check_labels(y, z.size)
        w = check_weight(weight, z.size)
        return self._run(z, _ESMMData(lab, w), self._ctr(ctr_prob, z.size), reuse=False)

    def loss(
        self,
        margin: npt.ArrayLike,
        y: npt.ArrayLike,
        ctr_prob: npt.ArrayLike | None = None,
        weight: npt.ArrayLike | None = None,
    ) -> float:
        """Sum over rows of ``w_i · BCE(pCTR_i σ(u_i), v_i)``."""
        z = check_margin(margin)
        lab = check_labels(y, z.size)
        w = check_weight(weight, z.size)
        d = _ESMMData(lab, w)
        a = self._ctr(ctr_prob, z.size)
        return float(KP.row_sum(K.esmm_loss_rows, z.size, self._threads(False, z.size), z, d.y, a, d.w, d.has_w))

    def _compute(self, z: Any, data: _ESMMData, iteration: int, reuse: bool) -> tuple[Any, Any]:
        return self._run(z, data, self._ctr(None, data.n), reuse)

    def _run(self, z: Any, data: _ESMMData, a: np.ndarray, reuse: bool) -> tuple[Any, Any]:
        if self.device.startswith("cuda"):
            from . import _cuda as gpu

            return gpu.esmm_grad_hess_cuda(self, z, data, a, reuse=reuse)
        g, h = self._buffers(z.shape[0], reuse)
        n = z.shape[0]
        KP.rows(K.esmm_rows, n, self._threads(reuse, n), z, data.y, a, data.w, data.has_w, HESSIAN_FLOOR, g, h)
        return g, h
