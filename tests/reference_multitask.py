"""Naive reference of the shared CTR/CVR booster's loss (two margins per row, z and u).

    L = Σ_i w_i [BCE(a_i, c_i) + BCE(t_i, v_i)] + λ·W·PWiseR(z),   a = σ(z), q = σ(u), t = a·q

The CTR part (BCE on clicks + λ·PWiseR, a double loop over pairs) is
:mod:`reference`; the pCTCVR part is written here straight from its formulas,
row by row in plain Python (no cancellation-free tricks: keep margins moderate).
"""

from __future__ import annotations

import math

import numpy as np
from reference import _sigmoid, reference_grad_hess, reference_loss


def reference_ctcvr_loss(z, u, y, weight=None):
    """Σ_i w_i BCE(σ(z_i) σ(u_i), v_i) by the textbook formula."""
    total = 0.0
    for i in range(len(z)):
        t = _sigmoid(float(z[i])) * _sigmoid(float(u[i]))
        v = 1.0 if y[i] == 2 else 0.0
        w = 1.0 if weight is None else float(weight[i])
        total += w * -(v * math.log(t) + (1 - v) * math.log(1 - t))
    return total


def reference_ctcvr_grad_fisher(z, u, y, weight=None):
    """Per-row gradients and Fisher Hessians of the pCTCVR term (columns z, u)."""
    n = len(z)
    g = np.zeros((n, 2))
    f = np.zeros((n, 2))
    for i in range(n):
        a = _sigmoid(float(z[i]))
        q = _sigmoid(float(u[i]))
        t = a * q
        v = 1.0 if y[i] == 2 else 0.0
        w = 1.0 if weight is None else float(weight[i])
        g[i, 0] = w * (t - v) * (1 - a) / (1 - t)
        g[i, 1] = w * (t - v) * (1 - q) / (1 - t)
        f[i, 0] = w * a * q * (1 - a) ** 2 / (1 - t)
        f[i, 1] = w * a * q * (1 - q) ** 2 / (1 - t)
    return g, f


def reference_shared_loss(margins, y, group=None, weight=None, lam=1.0, m1=0.1, m2=0.3, pair_loss="squared_hinge"):
    """``(ctr, ctcvr)``: BCE + λ·W·PWiseR on z, and Σ w BCE(t, v)."""
    margins = np.asarray(margins, dtype=np.float64)
    z, u = margins[:, 0], margins[:, 1]
    ctr = reference_loss(z, y, group, weight, lam=lam, m1=m1, m2=m2, pair_loss=pair_loss)
    return ctr, reference_ctcvr_loss(z, u, y, weight)


def reference_shared_grad_hess(
    margins, y, group=None, weight=None, lam=1.0, m1=0.1, m2=0.3, pair_loss="squared_hinge", beta=1.0, floor=1e-16
):
    """(n, 2) gradient and Hessian: z gets the CTR part + β·pCTCVR, u the pCTCVR part."""
    margins = np.asarray(margins, dtype=np.float64)
    z, u = margins[:, 0], margins[:, 1]
    gz, hz = reference_grad_hess(z, y, group, weight, lam=lam, m1=m1, m2=m2, pair_loss=pair_loss, floor=floor)
    gt, ft = reference_ctcvr_grad_fisher(z, u, y, weight)
    g = np.column_stack([gz + beta * gt[:, 0], gt[:, 1]])
    h = np.column_stack([hz + beta * ft[:, 0], ft[:, 1]])
    return g, np.maximum(h, floor)
