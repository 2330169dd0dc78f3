"""Naive reference implementation of BCE + λ·PWiseR (docs/mathematics.md §2–§4).

A plain Python double loop over every within-group pair, written for clarity,
never speed. The library's Numba kernels are tested against it.
"""

from __future__ import annotations

import math

import numpy as np


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _log1pexp(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def _pairs(y, group):
    """Yield (i, j, term) for every within-group pair; term 0 = P×C, 1 = P×N."""
    n = len(y)
    g = [0] * n if group is None else list(group)
    for i in range(n):
        if y[i] != 2:
            continue
        for j in range(n):
            if g[j] != g[i] or y[j] == 2:
                continue
            yield i, j, (0 if y[j] == 1 else 1)


def _setup(z, y, group, weight):
    z = [float(v) for v in z]
    y = [int(v) for v in y]
    n = len(z)
    w = [1.0] * n if weight is None else [float(v) for v in weight]
    norm = [0.0, 0.0]
    for i, j, t in _pairs(y, group):
        norm[t] += w[i] * w[j]
    return z, y, w, norm, sum(w)


def reference_loss(z, y, group=None, weight=None, lam=1.0, m1=0.1, m2=0.3, pair_loss="squared_hinge"):
    """Sum-form loss Σ w_i BCE_i + λ·W·PWiseR."""
    z, y, w, norm, W = _setup(z, y, group, weight)
    total = 0.0
    for i in range(len(z)):
        c = 1.0 if y[i] >= 1 else 0.0
        total += w[i] * (_log1pexp(z[i]) - c * z[i])
    for i, j, t in _pairs(y, group):
        m = m1 if t == 0 else m2
        if pair_loss == "squared_hinge":
            d = _sigmoid(z[j]) - _sigmoid(z[i]) + m
            phi = d * d if d > 0 else 0.0
        else:
            phi = _log1pexp(z[j] - z[i] + m)
        total += lam * W * w[i] * w[j] * phi / norm[t]
    return total


def reference_grad_hess(z, y, group=None, weight=None, lam=1.0, m1=0.1, m2=0.3, pair_loss="squared_hinge", floor=1e-16):
    """Gradient and (Gauss–Newton / exact) Hessian of :func:`reference_loss`."""
    z, y, w, norm, W = _setup(z, y, group, weight)
    n = len(z)
    g = np.zeros(n)
    h = np.zeros(n)
    for i in range(n):
        p = _sigmoid(z[i])
        c = 1.0 if y[i] >= 1 else 0.0
        g[i] = w[i] * (p - c)
        h[i] = w[i] * p * (1 - p)
    for i, j, t in _pairs(y, group):
        m = m1 if t == 0 else m2
        s = lam * W * w[i] * w[j] / norm[t]
        if pair_loss == "squared_hinge":
            pi, pj = _sigmoid(z[i]), _sigmoid(z[j])
            di, dj = pi * (1 - pi), pj * (1 - pj)
            d = pj - pi + m
            if d > 0:
                g[i] += s * (-2 * d * di)
                g[j] += s * (2 * d * dj)
                h[i] += s * 2 * di * di
                h[j] += s * 2 * dj * dj
        else:
            sv = _sigmoid(z[j] - z[i] + m)
            g[i] -= s * sv
            g[j] += s * sv
            h[i] += s * sv * (1 - sv)
            h[j] += s * sv * (1 - sv)
    return g, np.maximum(h, floor)


def central_difference(f, x, eps=1e-6):
    """The derivative of ``f`` (a scalar or an array of x's shape) by central differences in each entry of
    ``x``: the one finite-difference helper of the tests. For a scalar ``f`` the result has x's shape
    (the gradient); for an array ``f`` of x's shape, entry ``i`` is d f(x)[i] / d x[i] (the diagonal)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        fu, fd = f(up), f(down)
        out[i] = ((fu - fd) if np.ndim(fu) == 0 else (np.asarray(fu)[i] - np.asarray(fd)[i])) / (2 * eps)
    return out


def assert_handed_to_booster(got, want, rtol=0.0):
    """``got``: gradients or Hessians an adapter handed a booster, which must be float32 and each
    value of ``want`` (float64) rounded to nearest, what XGBoost and LightGBM keep of float64 ones.

    ``rtol`` > 0: ``want`` was computed another way (other partitions, another order of sums) and
    agrees to ``rtol`` before rounding. Then every value is within the rounding (2**-24 of itself)
    plus ``rtol``, and at least 99 % are exactly the rounded ones (a truncation would miss half).
    """
    got = np.asarray(got)
    want = np.asarray(want, dtype=np.float64)
    assert got.dtype == np.float32, got.dtype
    rounded = want.astype(np.float32)
    if rtol == 0.0:
        np.testing.assert_array_equal(got, rounded)
        return
    np.testing.assert_allclose(got, want, rtol=2.0**-24 + 2 * rtol, atol=0)
    assert np.mean(got == rounded) >= 0.99
