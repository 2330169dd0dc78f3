"""SharedCTCVRObjective (one two-output booster for CTR and CVR) against the naive reference,
finite differences, its properties and inside xgb.train with multi-output trees."""

import pickle

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from reference import assert_handed_to_booster, central_difference
from reference_multitask import reference_ctcvr_grad_fisher, reference_shared_grad_hess, reference_shared_loss

from conftest import make_grouped
from gbdt_pwiser import PWiseRObjective
from gbdt_pwiser.metrics import auc
from gbdt_pwiser.objectives import SharedCTCVRObjective, initial_margins, shared_probabilities
from gbdt_pwiser.sklearn._encode import CategoricalCodes, categorical_columns

LOSSES = ["squared_hinge", "logistic"]


# ----------------------------------------------------------------- strategies
@st.composite
def shared_data(draw, max_n=30, weighted=None):
    n = draw(st.integers(1, max_n))
    y = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n)), dtype=np.int8)
    m = np.array(draw(st.lists(st.tuples(st.floats(-6, 6), st.floats(-6, 6)), min_size=n, max_size=n)))
    n_ids = draw(st.integers(1, 5))
    group = np.array(draw(st.lists(st.integers(0, n_ids - 1), min_size=n, max_size=n)))
    if weighted is None:
        weighted = draw(st.booleans())
    w = np.array(draw(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n))) if weighted else None
    return m, y, group, w


params = st.fixed_dictionaries(
    {
        "lam": st.sampled_from([0.0, 0.5, 1.0, 3.0]),
        "m1": st.sampled_from([0.0, 0.05, 0.5]),
        "m2": st.sampled_from([0.0, 0.3, 1.0]),
        "pair_loss": st.sampled_from(LOSSES),
        "beta": st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    }
)


def _obj(p, **kw):
    return SharedCTCVRObjective(
        lam=p["lam"],
        margin_click_only=p["m1"],
        margin_no_click=p["m2"],
        pair_loss=p["pair_loss"],
        ctcvr_weight_ctr=p["beta"],
        **kw,
    )


def _ref_kw(p):
    return {"lam": p["lam"], "m1": p["m1"], "m2": p["m2"], "pair_loss": p["pair_loss"]}


def _random_case(rng, weighted, n_groups=12):
    y, group = make_grouped(rng, n_groups=n_groups, size=(2, 9), conv=0.2, click=0.3)
    m = rng.normal(0, 1.5, (y.size, 2))
    w = rng.uniform(0.3, 2.5, y.size) if weighted else None
    return m, y, group, w


# ----------------------------------------------------------------- exact vs naive
@given(shared_data(), params)
def test_grad_hess_match_naive_reference(data, p):
    m, y, group, w = data
    g, h = _obj(p).grad_hess(m, y, group=group, weight=w)
    rg, rh = reference_shared_grad_hess(m, y, group, w, beta=p["beta"], **_ref_kw(p))
    assert g.shape == h.shape == (y.size, 2) and g.dtype == h.dtype == np.float64
    assert_allclose(g, rg, rtol=1e-9, atol=1e-11)
    assert_allclose(h, rh, rtol=1e-9, atol=1e-11)
    assert np.all(h >= 1e-16)


@given(shared_data(), params)
def test_loss_matches_naive_reference(data, p):
    m, y, group, w = data
    obj = _obj(p)
    ctr, ctcvr = obj.loss_terms(m, y, group=group, weight=w)
    rctr, rctcvr = reference_shared_loss(m, y, group, w, **_ref_kw(p))
    assert_allclose(ctr, rctr, rtol=1e-9, atol=1e-10)
    assert_allclose(ctcvr, rctcvr, rtol=1e-9, atol=1e-10)
    # the loss as written does not depend on the pCTCVR share on z
    assert_allclose(obj.loss(m, y, group=group, weight=w), rctr + rctcvr, rtol=1e-12)


@given(shared_data(), params, st.randoms(use_true_random=False))
def test_row_permutation_equivariance(data, p, rnd):
    m, y, group, w = data
    perm = np.array(rnd.sample(range(y.size), y.size))
    obj = _obj(p)
    g, h = obj.grad_hess(m, y, group=group, weight=w)
    gp, hp = obj.grad_hess(m[perm], y[perm], group=group[perm], weight=None if w is None else w[perm])
    assert_allclose(gp, g[perm], rtol=1e-12, atol=1e-14)
    assert_allclose(hp, h[perm], rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- finite differences
@pytest.mark.parametrize("pair_loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("beta", [1.0, 0.0])
def test_gradient_matches_finite_differences_of_the_loss(rng, pair_loss, weighted, beta):
    m, y, group, w = _random_case(rng, weighted)
    obj = SharedCTCVRObjective(
        lam=1.5, margin_click_only=0.1, margin_no_click=0.2, pair_loss=pair_loss, ctcvr_weight_ctr=beta
    )
    g, _ = obj.grad_hess(m, y, group=group, weight=w)

    def terms(v):
        return obj.loss_terms(v, y, group, w)

    # z: BCE on clicks + λ·PWiseR + β·pCTCVR term; u: the pCTCVR term only
    fd_z = central_difference(lambda v: terms(v).ctr + beta * terms(v).ctcvr, m)[:, 0]
    fd_u = central_difference(lambda v: terms(v).ctcvr, m)[:, 1]
    assert_allclose(g, np.column_stack([fd_z, fd_u]), rtol=1e-5, atol=1e-7)
    if beta == 1.0:  # the loss as written: its plain gradient
        assert_allclose(g, central_difference(lambda v: obj.loss(v, y, group, w), m), rtol=1e-5, atol=1e-7)


def _bump(m, i, c, eps):
    out = m.copy()
    out[i, c] += eps
    return out


def test_fisher_hessian_is_the_expected_second_derivative(rng):
    # E_{v ~ Bernoulli(t)} ∂²BCE(t, v) equals the Fisher form, per margin; the exact second
    # derivative at v = 0 is negative somewhere, which is why trees get the Fisher form.
    n = 60
    m = np.column_stack([rng.uniform(-4, 4, n), rng.uniform(-4, 4, n)])
    obj = SharedCTCVRObjective(lam=0.0)
    eps = 1e-5
    expected = np.zeros((n, 2))
    exact0 = np.zeros((n, 2))
    t = np.prod(1 / (1 + np.exp(-m)), axis=1)
    for v in (0, 2):
        y = np.full(n, v, dtype=np.int8)
        for c in range(2):
            gp = reference_ctcvr_grad_fisher(*_bump(m, slice(None), c, eps).T, y)[0][:, c]
            gm = reference_ctcvr_grad_fisher(*_bump(m, slice(None), c, -eps).T, y)[0][:, c]
            d2 = (gp - gm) / (2 * eps)
            expected[:, c] += (t if v == 2 else 1 - t) * d2
            if v == 0:
                exact0[:, c] = d2
    _, fisher = reference_ctcvr_grad_fisher(m[:, 0], m[:, 1], np.zeros(n))
    assert_allclose(expected, fisher, rtol=1e-5, atol=1e-9)
    assert np.any(exact0 < 0)
    # the objective's u column is exactly the Fisher form; its z column adds BCE's a(1 - a)
    _, h = obj.grad_hess(m, np.zeros(n, dtype=np.int8))
    a = 1 / (1 + np.exp(-m[:, 0]))
    assert_allclose(h[:, 1], fisher[:, 1], rtol=1e-10)
    assert_allclose(h[:, 0], a * (1 - a) + fisher[:, 0], rtol=1e-10)


# ----------------------------------------------------------------- the share of pCTCVR on z
@pytest.mark.parametrize("pair_loss", LOSSES)
@pytest.mark.parametrize("pairs", ["all", 3])
def test_zero_share_leaves_z_to_pwiser_and_u_unchanged(rng, pair_loss, pairs):
    m, y, group, w = _random_case(rng, weighted=True)
    kw = {"lam": 2.0, "pair_loss": pair_loss, "pairs": pairs, "random_state": 5}
    g0, h0 = SharedCTCVRObjective(ctcvr_weight_ctr=0.0, **kw).grad_hess(m, y, group, w, iteration=4)
    g1, h1 = SharedCTCVRObjective(ctcvr_weight_ctr=1.0, **kw).grad_hess(m, y, group, w, iteration=4)
    g3, h3 = SharedCTCVRObjective(ctcvr_weight_ctr=3.0, **kw).grad_hess(m, y, group, w, iteration=4)
    gz, hz = PWiseRObjective(**kw).grad_hess(m[:, 0], y, group, w, iteration=4)
    # β = 0: the z column is exactly the CTR booster's BCE + λ·PWiseR
    assert_array_equal(g0[:, 0], gz)
    assert_array_equal(h0[:, 0], hz)
    # the u column never depends on β
    assert_array_equal(g0[:, 1], g1[:, 1])
    assert_array_equal(h0[:, 1], h3[:, 1])
    # and β scales the pCTCVR share on z linearly
    assert_allclose(g3[:, 0] - gz, 3 * (g1[:, 0] - gz), rtol=1e-9, atol=1e-12)
    assert_allclose(h3[:, 0] - hz, 3 * (h1[:, 0] - hz), rtol=1e-9, atol=1e-12)
    assert not np.allclose(g1[:, 0], gz)


# ----------------------------------------------------------------- edge cases
@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_no_conversion_and_lambda_zero_give_finite_values(rng, lam):
    y = rng.choice([0, 1], 50).astype(np.int8)  # clicks but no conversion anywhere
    m = rng.normal(0, 2, (50, 2))
    group = rng.integers(0, 5, 50)
    obj = SharedCTCVRObjective(lam=lam)
    g, h = obj.grad_hess(m, y, group=group)
    assert np.all(np.isfinite(g)) and np.all(h > 0)
    rg, rh = reference_shared_grad_hess(m, y, group, lam=lam, m1=0.02, m2=0.02)
    assert_allclose(g, rg, rtol=1e-9, atol=1e-12)
    assert_allclose(h, rh, rtol=1e-9, atol=1e-11)
    assert np.isfinite(obj.loss(m, y, group=group))
    assert np.all(g[:, 1] > 0)  # no conversion: pCVR is pushed down everywhere


@pytest.mark.parametrize("scale", [30.0, 100.0, 700.0])
def test_extreme_margins_stay_finite_and_accurate(scale):
    vals = np.array([-scale, -1.0, 0.0, 1.0, scale])
    m = np.array([(a, b) for a in vals for b in vals])
    for v in (0, 1, 2):
        y = np.full(len(m), v, dtype=np.int8)
        obj = SharedCTCVRObjective(lam=1.0)
        g, h = obj.grad_hess(m, y)
        assert np.all(np.isfinite(g)) and np.all(h >= 1e-16) and np.all(np.isfinite(h))
        assert np.isfinite(obj.loss(m, y))
        # one label everywhere: no pairs; |BCE| <= 1 and |pCTCVR| <= 1 per margin
        assert np.all(np.abs(g[:, 0]) <= 2.0 + 1e-12) and np.all(np.abs(g[:, 1]) <= 1.0 + 1e-12)
    # −log(1 − t) at z = u = 30: 1 − t = e^−30 + e^−30 − e^−60 (cancellation-free: 29.3069)
    ctcvr = SharedCTCVRObjective(lam=0.0).loss_terms(np.array([[30.0, 30.0]]), [0]).ctcvr
    assert_allclose(ctcvr, -np.log(2 * np.exp(-30.0) - np.exp(-60.0)), rtol=1e-12)
    # a tiny pCTCVR keeps its relative accuracy: −log(1 − t) ≈ t
    tiny = SharedCTCVRObjective(lam=0.0).loss_terms(np.array([[-30.0, -20.0]]), [0]).ctcvr
    t = 1 / (1 + np.exp(30.0)) / (1 + np.exp(20.0))
    assert_allclose(tiny, t, rtol=1e-13)


def test_float32_margins_accepted(rng):
    m, y, group, _ = _random_case(rng, weighted=False)
    m32 = m.astype(np.float32)
    obj = SharedCTCVRObjective()
    g32, h32 = obj.grad_hess(m32, y, group)
    g64, h64 = obj.grad_hess(m32.astype(np.float64), y, group)
    assert_array_equal(g32, g64)
    assert_array_equal(h32, h64)


@pytest.mark.parametrize(
    "margins, y, kw, exc, msg",
    [
        (np.zeros(4), [0, 1, 2, 0], {}, ValueError, r"shape \(n, 2\)"),
        (np.zeros((4, 3)), [0, 1, 2, 0], {}, ValueError, r"shape \(n, 2\)"),
        (np.array([[0, 0], [np.nan, 0]]), [0, 1], {}, ValueError, "row 1, column 0"),
        (np.array([[0, 0], [0, np.inf]]), [0, 1], {}, ValueError, "row 1, column 1"),
        (np.array([["a", "b"]]), [0], {}, TypeError, "numeric"),
        (np.zeros((3, 2)), [0, 1], {}, ValueError, "rows"),
        (np.zeros((2, 2)), [0, 3], {}, ValueError, "funnel labels"),
        (np.zeros((2, 2)), [0, 1], {"weight": [1.0, -1.0]}, ValueError, "non-negative"),
        (np.zeros((2, 2)), [0, 1], {"group": [0]}, ValueError, "group"),
    ],
)
def test_bad_input_raises_clear_errors(margins, y, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        SharedCTCVRObjective().grad_hess(margins, y, **kw)
    with pytest.raises(exc, match=msg):
        SharedCTCVRObjective().loss(margins, y, **kw)


@pytest.mark.parametrize(
    "kw, exc, msg",
    [
        ({"ctcvr_weight_ctr": -0.5}, ValueError, "ctcvr_weight_ctr"),
        ({"ctcvr_weight_ctr": float("nan")}, ValueError, "ctcvr_weight_ctr"),
        ({"ctcvr_weight_ctr": "1"}, TypeError, "ctcvr_weight_ctr"),
        ({"lam": -1}, ValueError, "lam"),
        ({"pair_loss": "hinge"}, ValueError, "pair_loss"),
        ({"pairs": 0}, ValueError, "pairs"),
        ({"n_jobs": 0}, ValueError, "n_jobs"),
    ],
)
def test_bad_parameters_raise(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        SharedCTCVRObjective(**kw)
    obj = SharedCTCVRObjective()
    for k, v in kw.items():
        setattr(obj, k, v)
    with pytest.raises(exc, match=msg):  # set after construction: checked at the next call
        obj.grad_hess(np.zeros((2, 2)), [0, 2])


def test_repr_pickle_and_parameter_changes(rng):
    m, y, group, w = _random_case(rng, weighted=True)
    obj = SharedCTCVRObjective(lam=0.5, pairs=4, ctcvr_weight_ctr=0.25, random_state=3)
    assert "ctcvr_weight_ctr=0.25" in repr(obj)
    clone = pickle.loads(pickle.dumps(obj))
    assert repr(clone) == repr(obj)
    for a, b in zip(obj.grad_hess(m, y, group, w, 2), clone.grad_hess(m, y, group, w, 2), strict=True):
        assert_array_equal(a, b)
    obj.lam = 0.0  # a changed parameter reaches the CTR column
    assert_array_equal(
        obj.grad_hess(m, y, group, w)[0],
        SharedCTCVRObjective(lam=0.0, ctcvr_weight_ctr=0.25).grad_hess(m, y, group, w)[0],
    )


def test_lightgbm_is_refused_with_a_clear_error():
    import lightgbm as lgb

    ds = lgb.Dataset(np.zeros((4, 1)), label=[0, 1, 2, 0])
    with pytest.raises(TypeError, match="LightGBM has no multi-output trees"):
        SharedCTCVRObjective()(np.zeros((4, 2)), ds)


def test_initial_margins_and_probabilities():
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    z0, u0 = initial_margins(y)
    assert_allclose(1 / (1 + np.exp(-z0)), 0.4)
    assert_allclose(1 / (1 + np.exp(-u0)), 0.5)
    w = np.array([1, 1, 1, 1, 1, 1, 1, 3, 2, 2.0])
    _, q, t = shared_probabilities(initial_margins(y, w)[None, :])
    assert_allclose(t, (w * (y == 2)).sum() / w.sum())  # σ(z0)σ(u0) = conversion rate
    assert_allclose(q, 4 / 8)
    assert np.isfinite(initial_margins([0, 0, 1])).all() and initial_margins([0, 0, 0])[1] < -13
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        shared_probabilities(np.zeros(3))


# ----------------------------------------------------------------- categorical codes
def test_categorical_codes_keep_order_and_map_unseen_to_nan():
    X = pd.DataFrame(
        {
            "a": pd.Categorical([3, 1, 3], categories=[1, 2, 3]),
            "x": [0.5, 1.5, 2.5],
            "b": pd.Categorical(["u", "v", None]),
        }
    )
    assert categorical_columns(X) == ["a", "b"] and categorical_columns(X.to_numpy()) == []
    enc = CategoricalCodes().fit(X)
    out = enc.transform(X)
    assert list(out.columns) == ["a", "x", "b"]
    assert_array_equal(out["a"], [2, 0, 2])
    assert_array_equal(out["b"], [0, 1, np.nan])
    assert out["a"].dtype == np.float32 and out["x"].dtype == X["x"].dtype
    new = pd.DataFrame({"a": pd.Categorical([2, 9]), "x": [0.0, 0.0], "b": ["v", "w"]})
    assert_array_equal(enc.transform(new)["a"], [1, np.nan])
    assert_array_equal(enc.transform(new)["b"], [1, np.nan])
    assert X["a"].dtype == "category"  # the input is not modified
    with pytest.raises(ValueError, match="lacks the categorical"):
        enc.transform(X[["a", "x"]])
    with pytest.raises(TypeError, match="DataFrame"):
        enc.transform(np.zeros((2, 3)))
    arr = np.zeros((2, 2))
    assert CategoricalCodes().fit(arr).transform(arr) is arr


# ----------------------------------------------------------------- inside xgb.train
SHARED_PARAMS = {
    "multi_strategy": "multi_output_tree",
    "tree_method": "hist",
    "num_target": 2,
    "max_depth": 4,
    "eta": 0.2,
    "max_bin": 64,
    "nthread": 1,
    "seed": 0,
    "disable_default_eval_metric": 1,
}


@pytest.fixture(scope="module")
def dense_log():
    """Simulated ad log in the dense regime (10 % CTR, 20 % of clicks convert), split by request."""
    from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group

    log = make_ad_log(800, ctr=0.1, cvr=0.2, random_state=0)
    train, test = train_test_split_by_group(log, test_size=0.5, random_state=0)
    train = train.sort_by_group()
    enc = CategoricalCodes().fit(train.X)
    return enc.transform(train.X), train.y, train.group, enc.transform(test.X), test.y


def test_xgb_categorical_features_are_refused_by_multi_output_trees():
    # the fact behind CategoricalCodes: if XGBoost lifts this, the encoding can go
    from gbdt_pwiser.datasets import make_ad_log

    log = make_ad_log(20, random_state=0)
    d = xgb.DMatrix(log.X, label=log.y, enable_categorical=True)
    with pytest.raises(xgb.core.XGBoostError, match="not yet implemented"):
        xgb.train(SHARED_PARAMS, d, 1, obj=SharedCTCVRObjective())


def test_xgb_multi_output_trees_train_on_funnel_labels(dense_log):
    X, y, group, Xt, yt = dense_log
    calls = []

    class Spy(SharedCTCVRObjective):
        def _compute(self, m, data, iteration, reuse):
            calls.append((m.shape, iteration))
            return super()._compute(m, data, iteration, reuse)

    dtrain = xgb.DMatrix(X, label=y, qid=group)
    params = {**SHARED_PARAMS, "base_score": initial_margins(y).tolist()}
    booster = xgb.train(params, dtrain, 25, obj=Spy(lam=1.0))
    assert calls == [((y.size, 2), i) for i in range(25)]
    margins = booster.predict(xgb.DMatrix(Xt), output_margin=True)
    assert margins.shape == (yt.size, 2)
    ctr, cvr, ctcvr = shared_probabilities(margins)
    click, conv = yt >= 1, yt == 2
    # sensible figures on this simulator (true-probability ceilings: ~0.79, ~0.89, ~0.83)
    assert 0.70 < auc(click, ctr) < 0.85
    assert 0.72 < auc(conv, ctcvr) < 0.92
    assert 0.60 < auc(conv[click], cvr[click]) < 0.9
    assert auc(conv, ctcvr) > auc(conv, ctr) - 0.02
    # calibrated in the mean: the predicted rates match the realised ones
    assert_allclose(ctr.mean(), click.mean(), rtol=0.15)
    assert_allclose(ctcvr.mean(), conv.mean(), rtol=0.25)
    # the training loss fell from the starting point
    obj = SharedCTCVRObjective(lam=1.0)
    start = np.tile(initial_margins(y), (y.size, 1))
    assert obj.loss(booster.predict(dtrain, output_margin=True), y, group) < 0.97 * obj.loss(start, y, group)


def test_xgb_base_margin_of_shape_n_by_2_equals_base_score(dense_log):
    X, y, group, _, _ = dense_log
    init = initial_margins(y)
    b1 = xgb.train(
        {**SHARED_PARAMS, "base_score": init.tolist()},
        xgb.DMatrix(X, label=y, qid=group),
        5,
        obj=SharedCTCVRObjective(),
    )
    d2 = xgb.DMatrix(X, label=y, qid=group, base_margin=np.tile(init, (y.size, 1)))
    b2 = xgb.train({**SHARED_PARAMS, "base_score": [0.0, 0.0]}, d2, 5, obj=SharedCTCVRObjective())
    d2t = xgb.DMatrix(X, base_margin=np.tile(init, (y.size, 1)))
    assert_allclose(
        b1.predict(xgb.DMatrix(X), output_margin=True), b2.predict(d2t, output_margin=True), rtol=1e-5, atol=1e-5
    )


def test_xgb_shared_booster_is_deterministic(dense_log):
    X, y, group, _, _ = dense_log
    params = {**SHARED_PARAMS, "base_score": initial_margins(y).tolist(), "subsample": 0.8}

    def fit(seed, nthread, n_jobs):
        obj = SharedCTCVRObjective(pairs=3, random_state=seed, n_jobs=n_jobs)
        b = xgb.train({**params, "nthread": nthread}, xgb.DMatrix(X, label=y, qid=group), 8, obj=obj)
        return bytes(b.save_raw("ubj"))

    first = fit(0, 1, 1)
    assert fit(0, 1, 1) == first
    assert fit(0, 2, 2) == first  # whatever the thread count
    assert fit(1, 1, 1) != first  # the seed drives the sampled pairs


def test_xgb_sklearn_wrapper_with_click_conversion_columns(dense_log):
    X, y, _, Xt, _ = dense_log
    Y = np.column_stack([y >= 1, y == 2]).astype(np.float64)
    obj = SharedCTCVRObjective(lam=0.0)
    reg = xgb.XGBRegressor(
        objective=obj,
        multi_strategy="multi_output_tree",
        tree_method="hist",
        n_estimators=10,
        max_depth=3,
        max_bin=64,
        n_jobs=1,
        base_score=initial_margins(y).tolist(),
    )
    reg.fit(X, Y)
    d = xgb.DMatrix(X, label=y)
    ref = xgb.train(
        {**SHARED_PARAMS, "max_depth": 3, "eta": 0.3, "base_score": initial_margins(y).tolist()},
        d,
        10,
        obj=SharedCTCVRObjective(lam=0.0),
    )
    assert_allclose(
        reg.predict(Xt, output_margin=True), ref.predict(xgb.DMatrix(Xt), output_margin=True), rtol=1e-5, atol=1e-5
    )


def test_sklearn_calling_convention_with_group_sizes(rng):
    # obj(y_true, y_pred, sample_weight, group_sizes): the call the estimator's backends make
    sizes = np.array([5, 3, 7, 4])
    y = rng.choice([0, 1, 2], sizes.sum(), p=[0.5, 0.3, 0.2]).astype(np.int8)
    m = rng.normal(size=(y.size, 2))
    w = rng.uniform(0.5, 2, y.size)
    obj = SharedCTCVRObjective(lam=2.0)
    g, h = obj(y, m, w, sizes)
    rg, rh = obj.grad_hess(m, y, group=np.repeat(np.arange(sizes.size), sizes), weight=w)
    assert_handed_to_booster(g, rg)
    assert_handed_to_booster(h, rh)
    g2, _ = obj(np.column_stack([y >= 1, y == 2]), m, w, sizes)  # [click, conversion] columns
    assert_handed_to_booster(g2, rg)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        obj(y, m[:, 0], w, sizes)
