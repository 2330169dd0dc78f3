"""Naive reference for the PWiseR sum-form loss (docs/mathematics.md §2): plain Python double loop.

Used only by tests/neural/test_torch_loss.py; deliberately slow and obvious.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def reference_pwiser_sum(
    z: Sequence[float],
    y: Sequence[int],
    group: Sequence[Any] | None = None,
    weight: Sequence[float] | None = None,
    *,
    lam: float,
    margin_click_only: float,
    margin_no_click: float,
    pair_loss: str,
) -> float:
    """``Σ w_i BCE_i + λ·W·PWiseR`` from logits ``z`` by enumerating every pair."""
    n = len(z)
    g = [0] * n if group is None else list(group)
    w = [1.0] * n if weight is None else [float(v) for v in weight]
    p = [_sigmoid(float(v)) for v in z]

    bce = 0.0
    for i in range(n):
        c = 1 if y[i] >= 1 else 0
        # -log σ(z) = softplus(-z), -log(1-σ(z)) = softplus(z)
        bce += w[i] * (_softplus(-z[i]) if c else _softplus(z[i]))

    pwiser = 0.0
    for partner_label, m in ((1, margin_click_only), (0, margin_no_click)):
        num = 0.0
        den = 0.0
        for i in range(n):
            if y[i] != 2:
                continue
            for j in range(n):
                if y[j] != partner_label or g[j] != g[i]:
                    continue
                wp = w[i] * w[j]
                if pair_loss == "squared_hinge":
                    phi = max(0.0, p[j] - p[i] + m) ** 2
                else:
                    phi = _softplus(z[j] - z[i] + m)
                num += wp * phi
                den += wp
        if den > 0:
            pwiser += num / den
    return bce + lam * sum(w) * pwiser
