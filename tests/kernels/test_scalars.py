"""The scalar building blocks: exp and the sigmoid against libm, and the compiled CPU code against
the same source run as Python (what the CUDA simulator runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from gbdt_pwiser.kernels import scalars as SC


@njit(cache=False)
def _exp_all(x):
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = SC.exp_nonpos(x[i])
    return out


@njit(cache=False)
def _sigmoid_all(z):
    p = np.empty(z.size)
    d = np.empty(z.size)
    for i in range(z.size):
        p[i], d[i] = SC.sigmoid_and_deriv(z[i])
    return p, d


def _inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    # every binade down to the clamp, the reduction's rounding ties (multiples of ln2 / 2), ends
    x = -np.concatenate(
        [
            rng.uniform(0.0, 708.0, n),
            np.exp(rng.uniform(-40.0, math.log(708.0), n)),
            (np.arange(-2, 2043) / 2.0) * math.log(2.0),
            [0.0, 5e-324, 1e-300, 707.9, 708.0],
        ]
    )
    return x[x >= -708.0]


def test_exp_nonpos_is_within_5e16_of_libm():
    x = _inputs(np.random.default_rng(0), 400_000)
    got = _exp_all(x)
    want = np.exp(x)
    assert np.max(np.abs(got - want) / want) < 5e-16
    assert _exp_all(np.array([0.0]))[0] == 1.0


def test_exp_nonpos_clamps_below_minus_708_to_a_positive_normal():
    got = _exp_all(np.array([-709.0, -1e4, -np.inf]))
    assert np.all(got == _exp_all(np.array([-708.0]))[0])
    assert np.all(got > np.finfo(np.float64).tiny)


def test_the_compiled_scalars_are_the_bits_of_the_same_source_run_as_python():
    # the CUDA simulator runs the scalars as Python (pow2_scale by math.ldexp): the same bits as
    # the CPU's compile (pow2_scale by the exponent's bits)
    x = _inputs(np.random.default_rng(1), 2_000)
    assert np.array_equal(_exp_all(x), np.array([SC.exp_nonpos(float(v)) for v in x]))
    z = np.concatenate([x, -x, [40.0, -40.0, 1e3, -1e3]])
    p, d = _sigmoid_all(z)
    py = np.array([SC.sigmoid_and_deriv(float(v)) for v in z])
    assert np.array_equal(p, py[:, 0]) and np.array_equal(d, py[:, 1])


@pytest.mark.parametrize("scale", [1.0, 30.0, 700.0])
def test_sigmoid_and_its_derivative_match_the_logistic_function(scale):
    z = np.random.default_rng(2).uniform(-scale, scale, 100_000)
    p, d = _sigmoid_all(z)
    e = np.exp(-np.abs(z))
    want_p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    want_d = e / (1.0 + e) ** 2
    np.testing.assert_allclose(p, want_p, rtol=2e-15, atol=0)
    np.testing.assert_allclose(d, want_d, rtol=4e-15, atol=0)
    assert np.all((p >= 0) & (p <= 1) & (d >= 0) & (d <= 0.25))
