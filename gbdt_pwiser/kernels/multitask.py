"""Numba kernels of the shared CTR/CVR booster's pCTCVR term (the entire-space loss on both margins).

One booster outputs two margins per row, ``z`` (CTR) and ``u`` (CVR). With
``a = σ(z)``, ``q = σ(u)`` and ``t = a·q`` (pCTCVR), the term
``w·BCE(t, v)`` (``v`` = conversion) has

    ∂/∂z = w (t − v)(1 − a)/(1 − t)        ∂/∂u = w (t − v)(1 − q)/(1 − t)

and the Fisher information (the expected Hessian, non-negative)

    F_z = w t (1 − a)² / (1 − t)           F_u = w t (1 − q)² / (1 − t).

Everything is computed without cancellation: ``1 − a = σ(−z)`` and
``1 − q = σ(−u)`` come from the sigmoid of the negated margin, and
``1 − t = (1 − a) + a (1 − q)`` is a sum of non-negative terms (the same trick
as the entire-space CVR kernel). For ``v = 1`` the gradients simplify to
``−(1 − a)`` and ``−(1 − q)``; for ``v = 0`` to ``t (1 − a)/(1 − t)`` and
``t (1 − q)/(1 − t)``.

The CTR column's BCE on clicks and its λ·PWiseR pair terms are not here: the
objective gets them from the PWiseR kernels and this pass adds the pCTCVR
term on top.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .scalars import log1pexp, sigmoid_and_deriv

__all__ = ["ctcvr_terms", "shared_ctcvr_rows", "ctcvr_loss_rows"]


@njit(cache=True, inline="always")
def ctcvr_terms(z, u):
    """Return ``(t, 1 − a, 1 − q, 1 − t)`` for margins ``z, u`` without cancellation."""
    a = sigmoid_and_deriv(z)[0]
    one_m_a = sigmoid_and_deriv(-z)[0]
    q = sigmoid_and_deriv(u)[0]
    one_m_q = sigmoid_and_deriv(-u)[0]
    one_m_t = one_m_a + a * one_m_q
    return a * q, one_m_a, one_m_q, one_m_t


@njit(cache=True, nogil=True, error_model="numpy")
def shared_ctcvr_rows(z, u, y, w, has_w, beta, floor, gz, hz, g, h):
    """Write the shared booster's ``(n, 2)`` gradient ``g`` and Hessian ``h`` (one thread, a range of
    rows: :mod:`gbdt_pwiser.kernels.passes` runs it in parts).

    ``gz, hz`` hold the CTR column's BCE + λ·PWiseR gradient and Hessian; the
    pCTCVR term is added to it scaled by ``beta`` (its share on ``z``) and is
    the whole of the CVR column. Hessians are floored at ``floor``.
    """
    for i in range(z.size):
        t, one_m_a, one_m_q, one_m_t = ctcvr_terms(np.float64(z[i]), np.float64(u[i]))
        wi = w[i] if has_w else 1.0
        if y[i] == 2:
            g_z = -one_m_a
            g_u = -one_m_q
        else:
            r = t / one_m_t
            g_z = r * one_m_a
            g_u = r * one_m_q
        fz = t * one_m_a * one_m_a / one_m_t
        fu = t * one_m_q * one_m_q / one_m_t
        g[i, 0] = gz[i] + beta * wi * g_z
        h0 = hz[i] + beta * wi * fz
        h[i, 0] = h0 if h0 > floor else floor
        g[i, 1] = wi * g_u
        h1 = wi * fu
        h[i, 1] = h1 if h1 > floor else floor


@njit(cache=True, nogil=True, error_model="numpy")
def ctcvr_loss_rows(z, u, y, w, has_w):
    """Σ_i w_i BCE(t_i, v_i) with ``t = σ(z) σ(u)``, accurate for any finite margins.

    ``v = 1``: ``−log t = log(1 + e^−z) + log(1 + e^−u)``. ``v = 0``:
    ``−log1p(−t)`` while ``t ≤ 1/2`` (``t`` small: no loss of relative accuracy),
    ``−log(1 − t)`` with ``1 − t`` from :func:`ctcvr_terms` above.
    """
    total = 0.0
    for i in range(z.size):
        zi = np.float64(z[i])
        ui = np.float64(u[i])
        wi = w[i] if has_w else 1.0
        if y[i] == 2:
            total += wi * (log1pexp(-zi) + log1pexp(-ui))
        else:
            t, _, _, one_m_t = ctcvr_terms(zi, ui)
            total += wi * (-math.log1p(-t) if t <= 0.5 else -math.log(one_m_t))
    return total
