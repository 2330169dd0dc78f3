"""Tests of gbdt_pwiser.neural.loss.pwiser_loss (docs/mathematics.md §2) against a naive double loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _reference_torch import reference_pwiser_sum  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gbdt_pwiser._defaults import (  # noqa: E402
    DEFAULT_LAM,
    DEFAULT_MARGIN_CLICK_ONLY,
    DEFAULT_MARGIN_NO_CLICK,
)
from gbdt_pwiser.neural.loss import PWiseRLoss, pwiser_loss  # noqa: E402

torch.set_num_threads(1)

PAIR_LOSSES = ["squared_hinge", "logistic"]


@st.composite
def batches(draw):
    n = draw(st.integers(1, 24))
    z = draw(st.lists(st.floats(-6, 6, allow_nan=False), min_size=n, max_size=n))
    y = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n))
    use_group = draw(st.booleans())
    group = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)) if use_group else None
    use_w = draw(st.booleans())
    w = draw(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n)) if use_w else None
    lam = draw(st.floats(0.0, 5.0))
    m1 = draw(st.floats(0.0, 1.0))
    m2 = draw(st.floats(0.0, 1.0))
    pair_loss = draw(st.sampled_from(PAIR_LOSSES))
    return z, y, group, w, lam, m1, m2, pair_loss


def _random_batch(rng, n=40, n_groups=4):
    z = rng.normal(scale=1.5, size=n)
    y = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
    group = rng.integers(0, n_groups, size=n)
    w = rng.uniform(0.2, 2.0, size=n)
    return z, y, group, w


# --------------------------------------------------------------------------- reference


@settings(max_examples=30, deadline=None)
@given(batches())
def test_sum_matches_naive_reference(batch):
    z, y, group, w, lam, m1, m2, pair_loss = batch
    got = pwiser_loss(
        torch.tensor(z, dtype=torch.float64),
        y,
        group,
        w,
        lam=lam,
        margin_click_only=m1,
        margin_no_click=m2,
        pair_loss=pair_loss,
        reduction="sum",
    )
    want = reference_pwiser_sum(z, y, group, w, lam=lam, margin_click_only=m1, margin_no_click=m2, pair_loss=pair_loss)
    assert math.isfinite(float(got))
    assert float(got) == pytest.approx(want, rel=1e-10, abs=1e-10)
    # mean form = sum form / W
    mean = pwiser_loss(
        torch.tensor(z, dtype=torch.float64),
        y,
        group,
        w,
        lam=lam,
        margin_click_only=m1,
        margin_no_click=m2,
        pair_loss=pair_loss,
    )
    total_w = len(z) if w is None else sum(w)
    assert float(mean) == pytest.approx(want / total_w, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("pair_loss", PAIR_LOSSES)
def test_probs_input_matches_logits(pair_loss):
    rng = np.random.default_rng(1)
    z, y, group, w = _random_batch(rng)
    zt = torch.tensor(z, dtype=torch.float64)
    a = pwiser_loss(zt, y, group, w, pair_loss=pair_loss, reduction="sum")
    b = pwiser_loss(torch.sigmoid(zt), y, group, w, pair_loss=pair_loss, inputs="probs", reduction="sum")
    assert float(b) == pytest.approx(float(a), rel=1e-9)


def test_group_ids_any_type_and_order():
    rng = np.random.default_rng(2)
    z, y, group, w = _random_batch(rng)
    zt = torch.tensor(z, dtype=torch.float64)
    base = pwiser_loss(zt, y, group, w, reduction="sum")
    as_str = pwiser_loss(zt, y, [f"g{g}" for g in group], w, reduction="sum")
    as_tensor = pwiser_loss(zt, torch.tensor(y), torch.tensor(group), torch.tensor(w), reduction="sum")
    perm = rng.permutation(len(z))
    permuted = pwiser_loss(zt[perm], y[perm], group[perm], w[perm], reduction="sum")
    for other in (as_str, as_tensor, permuted):
        assert float(other) == pytest.approx(float(base), rel=1e-12)


def test_defaults_come_from_core():
    rng = np.random.default_rng(3)
    z, y, group, _ = _random_batch(rng)
    zt = torch.tensor(z, dtype=torch.float64)
    got = pwiser_loss(zt, y, group)
    want = pwiser_loss(
        zt,
        y,
        group,
        lam=DEFAULT_LAM,
        margin_click_only=DEFAULT_MARGIN_CLICK_ONLY,
        margin_no_click=DEFAULT_MARGIN_NO_CLICK,
    )
    assert float(got) == float(want)
    module = PWiseRLoss(lam=0.7, pair_loss="logistic", reduction="sum")
    assert float(module(zt, y, group)) == float(
        pwiser_loss(zt, y, group, lam=0.7, pair_loss="logistic", reduction="sum")
    )
    assert "lam=0.7" in repr(module)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("pair_loss", PAIR_LOSSES)
@pytest.mark.parametrize("inputs", ["logits", "probs"])
def test_gradcheck_float64(pair_loss, inputs):
    rng = np.random.default_rng(4)
    z, y, group, w = _random_batch(rng, n=16, n_groups=2)
    x = torch.tensor(z, dtype=torch.float64)
    if inputs == "probs":
        x = torch.sigmoid(x)
    x.requires_grad_(True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)

    def f(x_, w_):
        return pwiser_loss(x_, y, group, w_, lam=2.0, pair_loss=pair_loss, inputs=inputs, reduction="mean")

    assert torch.autograd.gradcheck(f, (x, wt), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("pair_loss", PAIR_LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_core_objective(pair_loss, weighted):
    try:
        from gbdt_pwiser import PWiseRObjective
    except ImportError:
        pytest.skip("gbdt_pwiser.PWiseRObjective not available")
    rng = np.random.default_rng(5)
    z, y, group, w = _random_batch(rng, n=60, n_groups=5)
    group = np.array([f"q{g}" for g in group], dtype=object)
    w = w if weighted else None
    lam, m1, m2 = 1.7, 0.15, 0.35
    obj = PWiseRObjective(lam=lam, margin_click_only=m1, margin_no_click=m2, pair_loss=pair_loss, pairs="all")
    grad_core, _ = obj.grad_hess(z, y, group=group, weight=w)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    loss = pwiser_loss(
        zt,
        y,
        group,
        w,
        lam=lam,
        margin_click_only=m1,
        margin_no_click=m2,
        pair_loss=pair_loss,
        reduction="sum",
    )
    loss.backward()
    np.testing.assert_allclose(zt.grad.numpy(), np.asarray(grad_core, dtype=np.float64), rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- special cases


@pytest.mark.parametrize("pair_loss", PAIR_LOSSES)
def test_lam_zero_is_weighted_bce(pair_loss):
    rng = np.random.default_rng(6)
    z, y, group, w = _random_batch(rng)
    zt = torch.tensor(z, dtype=torch.float64)
    click = torch.tensor((y >= 1).astype(np.float64))
    wt = torch.tensor(w)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(zt, click, weight=wt, reduction="sum")
    got = pwiser_loss(zt, y, group, w, lam=0.0, pair_loss=pair_loss, reduction="sum")
    assert float(got) == pytest.approx(float(bce), rel=1e-12)
    got_mean = pwiser_loss(zt, y, group, w, lam=0.0, pair_loss=pair_loss)
    assert float(got_mean) == pytest.approx(float(bce / wt.sum()), rel=1e-12)


@pytest.mark.parametrize("pair_loss", PAIR_LOSSES)
def test_no_conversion_or_no_partner_is_finite_bce(pair_loss):
    zt = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    click = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(zt.detach(), click, reduction="mean")
    loss = pwiser_loss(zt, [1, 0, 1, 0], lam=3.0, pair_loss=pair_loss)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(float(bce), rel=1e-12)
    loss.backward()
    assert torch.isfinite(zt.grad).all()
    # conversions exist, but no partner in their own group -> pair terms are 0
    loss2 = pwiser_loss(zt.detach(), [2, 0, 2, 0], group=[0, 1, 2, 3], lam=3.0, pair_loss=pair_loss)
    bce2 = torch.nn.functional.binary_cross_entropy_with_logits(zt.detach(), click, reduction="mean")
    assert float(loss2) == pytest.approx(float(bce2), rel=1e-12)


def test_all_conversions_and_extreme_logits_are_finite():
    zt = torch.tensor([50.0, -50.0, 30.0], requires_grad=True)
    loss = pwiser_loss(zt, [2, 2, 0], lam=1.0, pair_loss="logistic")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zt.grad).all()
    p = torch.tensor([0.0, 1.0, 0.5], requires_grad=True)
    loss = pwiser_loss(p, [2, 0, 1], inputs="probs", pair_loss="logistic")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(p.grad).all()


def test_pairwise_term_only_counts_within_group_pairs():
    # conversion in group a scored below a non-click in group b: no pair, no penalty
    z = torch.tensor([-3.0, 3.0], dtype=torch.float64)
    y = [2, 0]
    bce = pwiser_loss(z, y, ["a", "b"], lam=0.0, reduction="sum")
    assert float(pwiser_loss(z, y, ["a", "b"], lam=5.0, reduction="sum")) == pytest.approx(float(bce))
    assert float(pwiser_loss(z, y, ["a", "a"], lam=5.0, reduction="sum")) > float(bce) + 1.0


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(y=[0, 3, 1]), ValueError),
        (dict(y=[0, -1, 1]), ValueError),
        (dict(y=[0, 1.5, 1]), ValueError),
        (dict(y=[0, float("nan"), 1]), ValueError),
        (dict(y=["a", "b", "c"]), TypeError),
        (dict(y=[0, 1]), ValueError),
        (dict(group=[0, 1]), ValueError),
        (dict(group=[0, None, 1]), ValueError),
        (dict(weight=[1.0, 1.0]), ValueError),
        (dict(weight=[1.0, -1.0, 1.0]), ValueError),
        (dict(weight=[1.0, float("nan"), 1.0]), ValueError),
        (dict(x=torch.tensor([0.0, float("nan"), 1.0])), ValueError),
        (dict(x=torch.tensor([0.0, float("inf"), 1.0])), ValueError),
        (dict(x=torch.tensor([0, 1, 1])), TypeError),
        (dict(x=torch.zeros(3, 2)), ValueError),
        (dict(x=torch.tensor([0.2, 1.2, 0.5]), inputs="probs"), ValueError),
        (dict(lam=-1.0), ValueError),
        (dict(lam=float("nan")), ValueError),
        (dict(lam="1"), TypeError),
        (dict(lam=True), TypeError),
        (dict(margin_click_only=-0.1), ValueError),
        (dict(margin_no_click=float("inf")), ValueError),
        (dict(pair_loss="hinge"), ValueError),
        (dict(inputs="scores"), ValueError),
        (dict(reduction="none"), ValueError),
        (dict(weight=[0.0, 0.0, 0.0]), ValueError),  # mean with zero total weight
    ],
)
def test_validation_errors(kwargs, exc):
    args = dict(x=torch.tensor([0.1, -0.2, 0.3]), y=[2, 1, 0])
    args.update(kwargs)
    x = args.pop("x")
    y = args.pop("y")
    with pytest.raises(exc):
        pwiser_loss(x, y, **args)


def test_bad_module_params():
    with pytest.raises(ValueError):
        PWiseRLoss(pair_loss="nope")
    with pytest.raises(ValueError):
        PWiseRLoss(lam=-2)


def test_empty_batch_sum_is_zero():
    loss = pwiser_loss(torch.zeros(0), [], reduction="sum")
    assert float(loss) == 0.0
