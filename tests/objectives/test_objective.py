"""PWiseRObjective against the naive reference, finite differences and properties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from reference import central_difference, reference_grad_hess, reference_loss

from conftest import make_grouped
from gbdt_pwiser import PWiseRObjective, funnel_label, initial_margin

LOSSES = ["squared_hinge", "logistic"]


# ----------------------------------------------------------------- strategies
@st.composite
def funnel_data(draw, max_n=30, weighted=None):
    n = draw(st.integers(1, max_n))
    y = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n)), dtype=np.int8)
    z = np.array(draw(st.lists(st.floats(-6, 6, allow_nan=False), min_size=n, max_size=n)))
    n_ids = draw(st.integers(1, 5))
    group = np.array(draw(st.lists(st.integers(0, n_ids - 1), min_size=n, max_size=n)))
    if weighted is None:
        weighted = draw(st.booleans())
    w = np.array(draw(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n))) if weighted else None
    return z, y, group, w


params = st.fixed_dictionaries(
    {
        "lam": st.sampled_from([0.0, 0.5, 1.0, 3.0]),
        "m1": st.sampled_from([0.0, 0.05, 0.1, 0.5]),
        "m2": st.sampled_from([0.0, 0.2, 0.3, 1.0]),
        "pair_loss": st.sampled_from(LOSSES),
    }
)


def _obj(p, **kw):
    return PWiseRObjective(
        lam=p["lam"], margin_click_only=p["m1"], margin_no_click=p["m2"], pair_loss=p["pair_loss"], **kw
    )


# ----------------------------------------------------------------- exact vs naive
@given(funnel_data(), params)
def test_exact_matches_naive_reference(data, p):
    z, y, group, w = data
    g, h = _obj(p).grad_hess(z, y, group=group, weight=w)
    rg, rh = reference_grad_hess(z, y, group, w, p["lam"], p["m1"], p["m2"], p["pair_loss"])
    assert g.dtype == np.float64 and h.dtype == np.float64
    assert_allclose(g, rg, rtol=1e-9, atol=1e-11)
    assert_allclose(h, rh, rtol=1e-9, atol=1e-11)


@given(funnel_data(), params)
def test_loss_matches_naive_reference(data, p):
    z, y, group, w = data
    got = _obj(p).loss(z, y, group=group, weight=w)
    ref = reference_loss(z, y, group, w, p["lam"], p["m1"], p["m2"], p["pair_loss"])
    assert_allclose(got, ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("pair_loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_larger_groups_match_reference(rng, pair_loss, weighted):
    # groups with > 32 conversions take the argsort path of the kernel
    y, group = make_grouped(rng, n_groups=6, size=(40, 160), conv=0.35)
    z = rng.normal(0, 1.5, y.size)
    w = rng.uniform(0.2, 2.0, y.size) if weighted else None
    obj = PWiseRObjective(lam=2.0, margin_click_only=0.1, margin_no_click=0.3, pair_loss=pair_loss)
    g, h = obj.grad_hess(z, y, group=group, weight=w)
    rg, rh = reference_grad_hess(z, y, group, w, 2.0, 0.1, 0.3, pair_loss)
    assert_allclose(g, rg, rtol=1e-9, atol=1e-11)
    assert_allclose(h, rh, rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------- finite differences
@pytest.mark.parametrize("pair_loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_finite_differences(rng, pair_loss, weighted):
    y, group = make_grouped(rng, n_groups=5, size=(3, 9), conv=0.25)
    z = rng.normal(0, 1.0, y.size)
    w = rng.uniform(0.5, 2.0, y.size) if weighted else None
    obj = PWiseRObjective(lam=1.5, margin_click_only=0.15, margin_no_click=0.35, pair_loss=pair_loss)
    g, _ = obj.grad_hess(z, y, group=group, weight=w)
    fd = central_difference(lambda v: obj.loss(v, y, group, w), z)
    assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_logistic_hessian_matches_finite_differences(rng):
    # the logistic pair loss has an exact diagonal Hessian: check it against d(grad)/dz
    y, group = make_grouped(rng, n_groups=4, size=(3, 8), conv=0.3)
    z = rng.normal(0, 1.0, y.size)
    obj = PWiseRObjective(lam=2.0, pair_loss="logistic")
    _, h = obj.grad_hess(z, y, group=group)
    assert_allclose(h, central_difference(lambda v: obj.grad_hess(v, y, group)[0], z), rtol=1e-5, atol=1e-8)


def test_squared_hinge_hessian_is_gauss_newton_and_nonnegative(rng):
    y, group = make_grouped(rng, n_groups=10, size=(3, 12), conv=0.3)
    z = rng.normal(0, 2.0, y.size)
    _, h = PWiseRObjective(lam=5.0, margin_click_only=0.5, margin_no_click=0.8).grad_hess(z, y, group=group)
    assert np.all(h >= 1e-16)
    _, rh = reference_grad_hess(z, y, group, None, 5.0, 0.5, 0.8)
    assert_allclose(h, rh, rtol=1e-9)


# ----------------------------------------------------------------- properties
@given(funnel_data())
def test_lambda_zero_is_bce_exactly(data):
    z, y, group, w = data
    g, h = PWiseRObjective(lam=0.0).grad_hess(z, y, group=group, weight=w)
    p = 1.0 / (1.0 + np.exp(-z))
    ww = np.ones_like(z) if w is None else w
    assert_allclose(g, ww * (p - (y >= 1)), rtol=1e-13, atol=1e-15)
    assert_allclose(h, np.maximum(ww * p * (1 - p), 1e-16), rtol=1e-12, atol=1e-16)


@given(funnel_data(weighted=False), st.sampled_from([0.0, 0.1, 0.7]), st.sampled_from([0.0, 0.3, 1.0]))
def test_pair_gradients_sum_to_zero_within_each_group(data, m1, m2):
    z, y, group, _ = data
    # logistic: antisymmetric in z, so the pair part of the gradient sums to zero per group
    obj = PWiseRObjective(lam=1.0, margin_click_only=m1, margin_no_click=m2, pair_loss="logistic")
    pair = obj.grad_hess(z, y, group)[0] - PWiseRObjective(lam=0.0).grad_hess(z, y, group)[0]
    # squared hinge: antisymmetric in p, so d/dp = (d/dz) / σ' sums to zero per group
    obj2 = PWiseRObjective(lam=1.0, margin_click_only=m1, margin_no_click=m2)
    p = 1 / (1 + np.exp(-z))
    pair2 = (obj2.grad_hess(z, y, group)[0] - PWiseRObjective(lam=0.0).grad_hess(z, y, group)[0]) / (p * (1 - p))
    for gid in np.unique(group):
        m = group == gid
        assert abs(pair[m].sum()) <= 1e-9 * max(1.0, np.abs(pair[m]).sum())
        assert abs(pair2[m].sum()) <= 1e-9 * max(1.0, np.abs(pair2[m]).sum())


@given(funnel_data(), params, st.randoms(use_true_random=False))
def test_row_permutation_equivariance(data, p, rnd):
    z, y, group, w = data
    perm = np.array(rnd.sample(range(z.size), z.size))
    obj = _obj(p)
    g, h = obj.grad_hess(z, y, group=group, weight=w)
    gp, hp = obj.grad_hess(z[perm], y[perm], group=group[perm], weight=None if w is None else w[perm])
    assert_allclose(gp, g[perm], rtol=1e-10, atol=1e-12)
    assert_allclose(hp, h[perm], rtol=1e-10, atol=1e-12)


@given(funnel_data(weighted=False), params, st.data())
def test_integer_weights_equal_duplicated_rows(data, p, d):
    z, y, group, _ = data
    reps = np.array(d.draw(st.lists(st.integers(1, 3), min_size=z.size, max_size=z.size)))
    obj = _obj(p)
    g, h = obj.grad_hess(z, y, group=group, weight=reps.astype(float))
    idx = np.repeat(np.arange(z.size), reps)
    gd, hd = obj.grad_hess(z[idx], y[idx], group=group[idx])
    assert_allclose(np.bincount(idx, gd, minlength=z.size), g, rtol=1e-9, atol=1e-11)
    assert_allclose(np.maximum(np.bincount(idx, hd, minlength=z.size), 1e-16), h, rtol=1e-9, atol=1e-11)


def test_group_ids_of_any_type_and_order(rng):
    y, group = make_grouped(rng, n_groups=12, size=(2, 10))
    z = rng.normal(size=y.size)
    obj = PWiseRObjective(lam=1.0)
    ref = obj.grad_hess(z, y, group=group)
    for ids in (
        group.astype(str),
        np.array([f"req-{g}" for g in group], dtype=object),
        group.astype(float) * 1.5,
        group * 1000 - 7,
    ):
        assert_array_equal(obj.grad_hess(z, y, group=ids)[0], ref[0])
    import pandas as pd

    assert_array_equal(obj.grad_hess(z, y, group=pd.Series(group).astype("category"))[0], ref[0])


def test_no_group_means_one_group(rng):
    y, _ = make_grouped(rng, n_groups=3, size=(5, 10))
    z = rng.normal(size=y.size)
    obj = PWiseRObjective()
    assert_allclose(obj.grad_hess(z, y)[0], obj.grad_hess(z, y, group=np.zeros(y.size))[0])
    assert_allclose(
        obj.grad_hess(z, y)[0],
        reference_grad_hess(z, y, m1=obj.margin_click_only, m2=obj.margin_no_click)[0],
        rtol=1e-9,
        atol=1e-12,
    )


def test_groups_without_conversion_or_partner_contribute_nothing():
    y = np.array([0, 1, 1, 0, 2, 2, 2, 1, 0], dtype=np.int8)
    group = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])  # group 0: no conversion, group 1: no partner
    z = np.linspace(-1, 1, 9)
    g, h = PWiseRObjective(lam=3.0).grad_hess(z, y, group=group)
    g0, h0 = PWiseRObjective(lam=0.0).grad_hess(z, y, group=group)
    assert_array_equal(g, g0)
    assert_array_equal(h, h0)
    assert np.all(np.isfinite(PWiseRObjective(lam=3.0).loss(z, y, group)))


@pytest.mark.parametrize("pair_loss", LOSSES)
@pytest.mark.parametrize("pairs", ["all", 2])
def test_extreme_margins_finite_with_positive_hessian(pair_loss, pairs):
    z = np.array([800.0, -800.0, 750.0, -1e4, 1e4, 0.0, -745.5, 709.9])
    y = np.array([2, 1, 0, 2, 0, 1, 2, 0])
    g, h = PWiseRObjective(pair_loss=pair_loss, pairs=pairs).grad_hess(z, y, group=[0, 0, 0, 0, 1, 1, 1, 1])
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h)) and np.all(h > 0)
    assert np.isfinite(PWiseRObjective(pair_loss=pair_loss).loss(z, y))


def test_float32_margins_accepted_without_changing_results(rng):
    y, group = make_grouped(rng)
    z = rng.normal(size=y.size).astype(np.float32)
    obj = PWiseRObjective()
    assert_allclose(obj.grad_hess(z, y, group)[0], obj.grad_hess(z.astype(np.float64), y, group)[0])


# ----------------------------------------------------------------- sampled mode
@pytest.mark.parametrize("pair_loss", LOSSES)
def test_sampled_mean_converges_to_exact(rng, pair_loss):
    y, group = make_grouped(rng, n_groups=8, size=(4, 12), conv=0.2)
    z = rng.normal(0, 1, y.size)
    w = rng.uniform(0.5, 2, y.size)
    exact = PWiseRObjective(lam=1.0, pair_loss=pair_loss).grad_hess(z, y, group, w)
    bce = PWiseRObjective(lam=0.0).grad_hess(z, y, group, w)
    sampled = PWiseRObjective(lam=1.0, pair_loss=pair_loss, pairs=2, random_state=7)
    R = 3000
    acc_g = np.zeros(y.size)
    acc_h = np.zeros(y.size)
    for it in range(R):
        g, h = sampled.grad_hess(z, y, group, w, iteration=it)
        acc_g += g
        acc_h += h
    pair_exact = exact[0] - bce[0]
    pair_mean = acc_g / R - bce[0]
    scale = np.abs(pair_exact).max()
    assert np.max(np.abs(pair_mean - pair_exact)) < 0.05 * scale
    # Hessian is unbiased too (up to the floor)
    assert np.max(np.abs(acc_h / R - exact[1])) < 0.05 * np.abs(exact[1]).max()


def test_sampled_is_deterministic_and_redrawn_each_round(rng):
    y, group = make_grouped(rng, n_groups=40, size=(5, 30), conv=0.1)
    z = rng.normal(size=y.size)
    a = PWiseRObjective(pairs=3, random_state=1)
    b = PWiseRObjective(pairs=3, random_state=1, n_jobs=1)
    g1 = a.grad_hess(z, y, group, iteration=5)[0]
    assert_array_equal(g1, b.grad_hess(z, y, group, iteration=5)[0])
    assert not np.array_equal(g1, a.grad_hess(z, y, group, iteration=6)[0])
    assert not np.array_equal(g1, PWiseRObjective(pairs=3, random_state=2).grad_hess(z, y, group, iteration=5)[0])


# ----------------------------------------------------------------- bad input
def _ok():
    return np.zeros(4), np.array([0, 1, 2, 0])


@pytest.mark.parametrize(
    "margin, y, kw, exc, msg",
    [
        (np.array([0, np.nan, 0, 0.0]), [0, 1, 2, 0], {}, ValueError, "NaN"),
        (np.array([0, np.inf, 0, 0.0]), [0, 1, 2, 0], {}, ValueError, "infinite"),
        (np.zeros((2, 2)), [0, 1, 2, 0], {}, ValueError, "1-D"),
        (np.array(["a", "b", "c", "d"]), [0, 1, 2, 0], {}, TypeError, "margin must be numeric"),
        (np.zeros(4), [0, 1, 3, 0], {}, ValueError, r"\{0, 1, 2\}"),
        (np.zeros(4), [0, 1, -1, 0], {}, ValueError, r"\{0, 1, 2\}"),
        (np.zeros(4), [0, 1.5, 2, 0], {}, ValueError, "integral"),
        (np.zeros(4), [0, np.nan, 2, 0], {}, ValueError, "NaN"),
        (np.zeros(4), ["0", "1", "2", "0"], {}, TypeError, "y must be numeric"),
        (np.zeros(4), [0, 1, 2], {}, ValueError, "3 rows but margin has 4"),
        (np.zeros(4), [0, 1, 2, 0], {"group": [0, 0, 1]}, ValueError, "group has 3 rows"),
        (np.zeros(4), [0, 1, 2, 0], {"group": [0, np.nan, 1, 1]}, ValueError, "NaN group"),
        (np.zeros(4), [0, 1, 2, 0], {"group": ["a", None, "b", "b"]}, ValueError, "missing"),
        (np.zeros(4), [0, 1, 2, 0], {"weight": [1, 1, 1]}, ValueError, "weight has 3 rows"),
        (np.zeros(4), [0, 1, 2, 0], {"weight": [1, -1, 1, 1]}, ValueError, "non-negative"),
        (np.zeros(4), [0, 1, 2, 0], {"weight": [1, np.nan, 1, 1]}, ValueError, "NaN"),
    ],
)
def test_bad_input_raises_clear_errors(margin, y, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        PWiseRObjective().grad_hess(margin, y, **kw)


@pytest.mark.parametrize(
    "kw, exc, msg",
    [
        ({"lam": -1}, ValueError, "lam"),
        ({"lam": float("nan")}, ValueError, "lam"),
        ({"lam": "1"}, TypeError, "lam"),
        ({"margin_click_only": -0.1}, ValueError, "margin_click_only"),
        ({"margin_no_click": -0.1}, ValueError, "margin_no_click"),
        ({"pair_loss": "hinge"}, ValueError, "pair_loss"),
        ({"pairs": "some"}, ValueError, "pairs"),
        ({"pairs": 0}, ValueError, "pairs"),
        ({"pairs": 2.5}, TypeError, "pairs"),
        ({"pairs": True}, TypeError, "pairs"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"device": 0}, TypeError, "device"),
        ({"random_state": -3}, ValueError, "random_state"),
        ({"n_jobs": 0}, ValueError, "n_jobs"),
    ],
)
def test_bad_parameters_raise(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        PWiseRObjective(**kw)


def test_funnel_label_and_initial_margin():
    assert_array_equal(funnel_label([0, 1, 1, 0], [0, 0, 1, 0]), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="conversion without a click"):
        funnel_label([0, 1], [1, 0])
    with pytest.raises(ValueError, match="different lengths"):
        funnel_label([0, 1], [0])
    assert_allclose(initial_margin([0, 0, 1, 2]), 0.0)
    assert_allclose(initial_margin([0, 1], weight=[3, 1]), np.log(1 / 3))
