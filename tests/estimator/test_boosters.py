"""The objectives inside xgb.train / lgb.train / sklearn wrappers, and the eval metrics."""

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from numpy.testing import assert_allclose, assert_array_equal
from reference import assert_handed_to_booster

from gbdt_pwiser import EntireSpaceCVRObjective, PWiseRObjective, initial_margin
from gbdt_pwiser.metrics import click_auc, conversion_auc, gauc, lgb_metric, xgb_metric


def _data(seed=0, n_groups=300, size=12, d=6):
    rng = np.random.default_rng(seed)
    n = n_groups * size
    X = rng.normal(size=(n, d))
    intent = X[:, 0] + 0.5 * rng.normal(size=n)
    click = rng.random(n) < 1 / (1 + np.exp(-(X[:, 1] + 0.7 * intent - 1.5)))
    conv = click & (rng.random(n) < 1 / (1 + np.exp(-(2 * intent - 1.0))))
    y = click.astype(np.int8) + conv.astype(np.int8)
    qid = np.repeat(np.arange(n_groups), size)
    return X, y, qid


XGB_PARAMS = {"tree_method": "hist", "max_depth": 4, "eta": 0.3, "nthread": 2, "seed": 0}


def test_xgb_lambda_zero_grows_native_binary_logistic_trees():
    X, y, _ = _data()
    base = initial_margin(y)
    bm = np.full(y.size, base)
    d_native = xgb.DMatrix(X, label=(y >= 1).astype(float), base_margin=bm)
    d_ours = xgb.DMatrix(X, label=y, base_margin=bm)
    native = xgb.train({**XGB_PARAMS, "objective": "binary:logistic"}, d_native, 10)
    ours = xgb.train({**XGB_PARAMS, "disable_default_eval_metric": 1}, d_ours, 10, obj=PWiseRObjective(lam=0.0))
    dn = native.get_dump(dump_format="json")
    do = ours.get_dump(dump_format="json")
    import json
    import re

    def structure(tree):
        # split features and child layout; thresholds / leaf values compared numerically below
        return re.sub(r'"(split_condition|leaf|gain|cover)":\s*[-0-9.e+]+', "", json.dumps(json.loads(tree)))

    assert [structure(t) for t in dn] == [structure(t) for t in do]
    assert_allclose(
        native.predict(d_native, output_margin=True), ours.predict(d_ours, output_margin=True), rtol=1e-4, atol=1e-4
    )


def test_xgb_objective_is_really_called_and_lambda_changes_the_model():
    X, y, qid = _data()
    calls = []

    class Spy(PWiseRObjective):
        def _compute(self, z, data, iteration, reuse):
            calls.append(iteration)
            return super()._compute(z, data, iteration, reuse)

    dtrain = xgb.DMatrix(X, label=y, qid=qid)
    params = {**XGB_PARAMS, "base_score": initial_margin(y), "disable_default_eval_metric": 1}
    b1 = xgb.train(params, dtrain, 7, obj=Spy(lam=2.0))
    assert calls == list(range(7))
    b0 = xgb.train(params, dtrain, 7, obj=PWiseRObjective(lam=0.0))
    assert not np.allclose(b1.predict(dtrain), b0.predict(dtrain))


def test_xgb_pwiser_improves_conversion_ranking_of_pctr():
    X, y, qid = _data(n_groups=600)
    Xt, yt, _ = _data(seed=1, n_groups=600)
    dtrain, dtest = xgb.DMatrix(X, label=y, qid=qid), xgb.DMatrix(Xt, label=yt)
    params = {**XGB_PARAMS, "base_score": initial_margin(y), "disable_default_eval_metric": 1}
    p0 = xgb.train(params, dtrain, 30, obj=PWiseRObjective(lam=0.0)).predict(dtest)
    p1 = xgb.train(params, dtrain, 30, obj=PWiseRObjective(lam=2.0)).predict(dtest)
    assert conversion_auc(p1, yt) > conversion_auc(p0, yt)
    assert click_auc(p1, yt) > 0.6


def test_xgb_qid_groups_and_per_group_weights_are_used():
    X, y, qid = _data(n_groups=50, size=8)
    gw = np.random.default_rng(3).uniform(0.5, 2.0, 50).astype(np.float32)  # DMatrix stores float32
    dtrain = xgb.DMatrix(X, label=y, qid=qid, weight=gw)  # XGBoost keeps per-group weights with qid
    z = np.random.default_rng(4).normal(size=y.size).astype(np.float32)
    obj = PWiseRObjective(lam=1.0)
    g, h = obj(z, dtrain)
    rg, rh = obj.grad_hess(z, y, group=qid, weight=np.repeat(gw, 8))
    assert_handed_to_booster(g, rg)
    assert_handed_to_booster(h, rh)


def test_xgb_round_counter_restarts_and_sampled_fit_is_reproducible():
    X, y, qid = _data()
    dtrain = xgb.DMatrix(X, label=y, qid=qid)
    params = {**XGB_PARAMS, "base_score": initial_margin(y), "disable_default_eval_metric": 1}
    obj = PWiseRObjective(lam=1.0, pairs=2, random_state=11)
    a = xgb.train(params, dtrain, 8, obj=obj).predict(dtrain)
    assert obj.iteration_ == 8
    b = xgb.train(params, dtrain, 8, obj=obj).predict(dtrain)  # same object, same data: restarts at 0
    c = xgb.train(params, dtrain, 8, obj=PWiseRObjective(lam=1.0, pairs=2, random_state=11)).predict(dtrain)
    assert_array_equal(a, b)
    assert_array_equal(a, c)
    d = xgb.train(params, dtrain, 8, obj=PWiseRObjective(lam=1.0, pairs=2, random_state=12)).predict(dtrain)
    assert not np.array_equal(a, d)


def test_xgb_custom_metric_and_early_stopping():
    X, y, qid = _data()
    Xv, yv, qv = _data(seed=5)
    dtrain, dvalid = xgb.DMatrix(X, label=y, qid=qid), xgb.DMatrix(Xv, label=yv, qid=qv)
    res = {}
    params = {**XGB_PARAMS, "base_score": initial_margin(y), "disable_default_eval_metric": 1}
    b = xgb.train(
        params,
        dtrain,
        200,
        obj=PWiseRObjective(),
        evals=[(dvalid, "valid")],
        custom_metric=xgb_metric("auc_click", "auc_conv", "auc_click_group"),
        early_stopping_rounds=5,
        evals_result=res,
        verbose_eval=False,
    )
    assert set(res["valid"]) == {"auc_click", "auc_conv", "auc_click_group"}
    assert b.best_iteration < 199
    m = b.predict(dvalid, output_margin=True, iteration_range=(0, b.best_iteration + 1))
    assert_allclose(res["valid"]["auc_click"][b.best_iteration], click_auc(m, yv), rtol=1e-6)
    assert_allclose(res["valid"]["auc_click_group"][b.best_iteration], gauc(yv >= 1, m, qv), rtol=1e-6)


def test_lgb_train_with_groups_weights_and_feval():
    X, y, qid = _data()
    Xv, yv, qv = _data(seed=5)
    sizes = np.bincount(qid)
    w = np.random.default_rng(2).uniform(0.5, 1.5, y.size).astype(np.float32)
    init = np.full(y.size, initial_margin(y, w))
    dtrain = lgb.Dataset(X, label=y, group=sizes, weight=w, init_score=init)
    dvalid = lgb.Dataset(Xv, label=yv, group=np.bincount(qv), init_score=np.full(yv.size, init[0]), reference=dtrain)
    calls = []

    class Spy(PWiseRObjective):  # lgb.train deep-copies params, so count on the class side
        def _compute(self, z, data, iteration, reuse):
            calls.append(iteration)
            return super()._compute(z, data, iteration, reuse)

    res = {}
    b = lgb.train(
        {"objective": Spy(lam=1.0), "metric": "None", "verbose": -1, "num_threads": 2, "seed": 0, "num_leaves": 15},
        dtrain,
        20,
        valid_sets=[dvalid],
        valid_names=["valid"],
        feval=lgb_metric("auc_click", "auc_conv_group"),
        callbacks=[lgb.record_evaluation(res)],
    )
    assert calls == list(range(20))
    assert res["valid"]["auc_click"][-1] > 0.65
    # the gradients LightGBM got are ours, with its groups and weights
    z = np.random.default_rng(0).normal(size=y.size)
    g, _ = PWiseRObjective(lam=1.0)(z, dtrain)
    assert_handed_to_booster(g, PWiseRObjective(lam=1.0).grad_hess(z, y, group=qid, weight=w)[0])
    raw = b.predict(Xv, raw_score=True) + init[0]
    assert_allclose(res["valid"]["auc_click"][-1], click_auc(raw, yv), rtol=1e-6)


def test_sklearn_wrappers_accept_the_objective():
    X, y, qid = _data(n_groups=100)
    reg = xgb.XGBRegressor(
        objective=PWiseRObjective(lam=1.0), n_estimators=5, max_depth=3, base_score=initial_margin(y), n_jobs=2
    )
    reg.fit(X, y, sample_weight=np.ones(y.size))
    assert np.all(np.isfinite(reg.predict(X)))
    from sklearn.base import clone

    assert clone(reg).get_params()["objective"].lam == 1.0
    rk = lgb.LGBMRanker(objective=PWiseRObjective(lam=1.0), n_estimators=5, verbose=-1, n_jobs=2)
    rk.fit(X, y, group=np.bincount(qid))
    assert np.all(np.isfinite(rk.predict(X)))


def test_entire_space_objective_in_xgb_train():
    X, y, _ = _data()
    ctr_booster = xgb.train(
        {**XGB_PARAMS, "objective": "binary:logistic"}, xgb.DMatrix(X, label=(y >= 1).astype(float)), 10
    )
    pctr = ctr_booster.predict(xgb.DMatrix(X))
    obj = EntireSpaceCVRObjective(ctr_prob=pctr)
    cvr = xgb.train(
        {**XGB_PARAMS, "base_score": 0.0, "disable_default_eval_metric": 1}, xgb.DMatrix(X, label=y), 15, obj=obj
    )
    u = cvr.predict(xgb.DMatrix(X), output_margin=True)
    assert obj.loss(u, y) < obj.loss(np.zeros_like(u), y)
    pcvr = 1 / (1 + np.exp(-u))
    assert conversion_auc(pctr * pcvr, y) > conversion_auc(pctr, y)


def test_metric_names_are_checked():
    with pytest.raises(ValueError, match="unknown metric"):
        xgb_metric("auc")


def test_gauc_matches_per_group_sklearn_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    group = rng.integers(0, 40, 2000).astype(str)
    y = (rng.random(2000) < 0.3).astype(int)
    s = np.round(rng.normal(size=2000), 1)  # ties
    num = den = 0.0
    for g in np.unique(group):
        m = group == g
        if 0 < y[m].sum() < m.sum():
            num += m.sum() * roc_auc_score(y[m], s[m])
            den += m.sum()
    assert_allclose(gauc(y, s, group), num / den, rtol=1e-12)
