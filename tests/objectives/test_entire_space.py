"""EntireSpaceCVRObjective (ESMM for trees, docs/mathematics.md §5)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from reference import central_difference

from gbdt_pwiser import EntireSpaceCVRObjective


def _naive(u, y, a, w):
    """Direct formulas of docs/mathematics.md §5: loss, gradient, exact second derivative, Fisher."""
    q = 1 / (1 + np.exp(-u))
    v = (y == 2).astype(float)
    loss = -(v * np.log(a * q) + (1 - v) * np.log(1 - a * q))
    grad = -v * (1 - q) + (1 - v) * a * q * (1 - q) / (1 - a * q)
    fisher = a * q * (1 - q) ** 2 / (1 - a * q)
    return (w * loss).sum(), w * grad, w * fisher


@st.composite
def esmm_data(draw):
    n = draw(st.integers(1, 25))
    u = np.array(draw(st.lists(st.floats(-8, 8), min_size=n, max_size=n)))
    y = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n)))
    a = np.array(draw(st.lists(st.floats(0.001, 0.999), min_size=n, max_size=n)))
    w = np.array(draw(st.lists(st.floats(0.1, 3), min_size=n, max_size=n)))
    return u, y, a, w


@given(esmm_data())
def test_matches_direct_formulas(data):
    u, y, a, w = data
    obj = EntireSpaceCVRObjective()
    g, h = obj.grad_hess(u, y, ctr_prob=a, weight=w)
    L, rg, rh = _naive(u, y, a, w)
    assert_allclose(g, rg, rtol=1e-9, atol=1e-12)
    assert_allclose(h, np.maximum(rh, 1e-16), rtol=1e-9, atol=1e-15)
    assert_allclose(obj.loss(u, y, ctr_prob=a, weight=w), L, rtol=1e-10)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    n = 40
    u, a = rng.normal(0, 2, n), rng.uniform(0.01, 0.99, n)
    y = rng.choice([0, 1, 2], n)
    w = rng.uniform(0.5, 2, n)
    obj = EntireSpaceCVRObjective(ctr_prob=a)
    g, _ = obj.grad_hess(u, y, weight=w)
    assert_allclose(g, central_difference(lambda v: obj.loss(v, y, weight=w), u), rtol=1e-6, atol=1e-9)


def test_fisher_hessian_is_nonnegative_where_exact_one_is_not():
    u = np.linspace(-10, 10, 201)
    a = np.full_like(u, 0.05)
    y = np.zeros(u.size, dtype=int)
    _, h = EntireSpaceCVRObjective().grad_hess(u, y, ctr_prob=a)
    # exact second derivative of -log(1 - a σ(u)) for comparison: negative for large u
    q = 1 / (1 + np.exp(-u))
    exact = a * q * (1 - q) * ((1 - 2 * q) * (1 - a * q) + a * q * (1 - q)) / (1 - a * q) ** 2
    assert np.any(exact < 0)
    assert np.all(h > 0)


def test_ctr_of_one_reduces_to_plain_bce():
    rng = np.random.default_rng(1)
    u = rng.normal(size=30)
    y = rng.choice([0, 1, 2], 30)
    g, h = EntireSpaceCVRObjective().grad_hess(u, y, ctr_prob=np.ones(30))
    q = 1 / (1 + np.exp(-u))
    assert_allclose(g, q - (y == 2), rtol=1e-9, atol=1e-12)
    assert_allclose(h, q * (1 - q), rtol=1e-9)


def test_extreme_values_stay_finite():
    u = np.array([-1e4, -800, 0, 800, 1e4, 800])
    y = np.array([0, 2, 1, 0, 2, 0])
    a = np.array([0.0, 1.0, 0.5, 1.0, 1e-9, 0.999999])
    g, h = EntireSpaceCVRObjective().grad_hess(u, y, ctr_prob=a)
    assert np.all(np.isfinite(g)) and np.all(h > 0)
    assert np.isfinite(EntireSpaceCVRObjective().loss(u, y, ctr_prob=a))


def test_bad_input():
    obj = EntireSpaceCVRObjective()
    with pytest.raises(ValueError, match="ctr_prob"):
        obj.grad_hess(np.zeros(3), [0, 1, 2])
    with pytest.raises(ValueError, match="probabilities"):
        obj.grad_hess(np.zeros(3), [0, 1, 2], ctr_prob=[0.1, 1.2, 0.3])
    with pytest.raises(ValueError, match="2 rows"):
        obj.grad_hess(np.zeros(3), [0, 1, 2], ctr_prob=[0.1, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        obj.grad_hess(np.zeros(3), [0, 1, 2], ctr_prob=[0.1, np.nan, 0.3])
