"""``CTCVRClassifier(structure="shared")``: one two-output XGBoost booster whose trees share every split."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from gbdt_pwiser import CTCVRClassifier
from gbdt_pwiser.metrics import conversion_auc
from gbdt_pwiser.objectives import SharedCTCVRObjective, initial_margins, shared_probabilities
from gbdt_pwiser.sklearn import NoGroupWarning

SMALL = {"n_estimators": 6, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1}


def _data(seed: int = 0, n_groups: int = 80, size: int = 10):
    rng = np.random.default_rng(seed)
    n = n_groups * size
    X = rng.normal(size=(n, 4))
    click = rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - 1)))
    conv = click & (rng.random(n) < 1 / (1 + np.exp(-(X[:, 1] + X[:, 0]))))
    y = click.astype(int) + conv
    group = rng.permutation(np.repeat(np.arange(n_groups), size)).astype(str)  # shuffled string ids
    return X, y, group


@pytest.fixture(scope="module")
def data():
    return _data()


def test_fit_predict_score(data):
    X, y, g = data
    m = CTCVRClassifier(structure="shared", **SMALL).fit(X, y, group=g)
    assert isinstance(m.booster_, xgb.Booster) and not hasattr(m, "ctr_booster_")
    assert m.n_rounds_ == SMALL["n_estimators"] and m.best_iteration_ is None
    assert_allclose(m.init_margins_, initial_margins(y))
    pctr, pcvr, pctcvr = m.predict_ctr(X), m.predict_cvr(X), m.predict_ctcvr(X)
    assert pctr.shape == pcvr.shape == (X.shape[0],)
    assert_array_equal(m.predict_proba(X)[:, 1], pctcvr)
    assert_array_equal(pctcvr, pctr * pcvr)
    assert_array_equal(m.classes_, [0, 1])
    assert m.score(X, y) == conversion_auc(pctcvr, y) > 0.6


def test_equals_a_direct_multi_output_xgb_train_on_group_sorted_rows(data):
    """The estimator is a thin wrapper: the same trees as xgb.train with SharedCTCVRObjective."""
    X, y, g = data
    m = CTCVRClassifier(structure="shared", lam=1.0, ctcvr_weight_ctr=0.5, **SMALL).fit(X, y, group=g)
    order = np.argsort(g, kind="stable")
    Xs, ys, gs = X[order], y[order], g[order]
    _, qid = np.unique(gs, return_inverse=True)
    obj = SharedCTCVRObjective(lam=1.0, ctcvr_weight_ctr=0.5, random_state=0)
    params = {
        "tree_method": "hist",
        "eta": 0.3,
        "max_depth": 3,
        "seed": 0,
        "nthread": 1,
        "device": "cpu",
        "verbosity": 1,
        "multi_strategy": "multi_output_tree",
        "num_target": 2,
        "disable_default_eval_metric": 1,
        "base_score": initial_margins(ys).tolist(),
    }
    booster = xgb.train(params, xgb.DMatrix(Xs, label=ys, qid=qid), num_boost_round=6, obj=obj)
    direct = booster.predict(xgb.DMatrix(X), output_margin=True)
    assert direct.shape == (X.shape[0], 2)
    assert_allclose(m.predict_ctcvr(X), shared_probabilities(direct)[2], rtol=1e-6)


def test_ctcvr_weight_ctr_matters_for_shared_only(data):
    X, y, g = data
    a = CTCVRClassifier(structure="shared", ctcvr_weight_ctr=0.0, **SMALL).fit(X, y, group=g)
    b = CTCVRClassifier(structure="shared", ctcvr_weight_ctr=1.0, **SMALL).fit(X, y, group=g)
    assert not np.allclose(a.predict_ctr(X), b.predict_ctr(X))
    c0 = CTCVRClassifier(ctcvr_weight_ctr=0.0, **SMALL).fit(X, y, group=g)
    c1 = CTCVRClassifier(ctcvr_weight_ctr=1.0, **SMALL).fit(X, y, group=g)
    assert_array_equal(c0.predict_proba(X), c1.predict_proba(X))


def test_pandas_categoricals_reach_the_booster_as_codes(data):
    X, y, g = data
    rng = np.random.default_rng(1)
    shop = rng.choice(["s0", "s1", "s2", "s3"], size=X.shape[0])
    frame = pd.DataFrame(X, columns=list("abcd")).assign(shop=pd.Categorical(shop))
    m = CTCVRClassifier(structure="shared", **SMALL).fit(frame, y, group=g)
    codes = frame.assign(shop=frame["shop"].cat.codes.astype(np.float32))
    ref = CTCVRClassifier(structure="shared", **SMALL).fit(codes, y, group=g)
    assert_allclose(m.predict_proba(frame), ref.predict_proba(codes))
    # an unseen category and a missing value are missing values to the trees
    new = frame.iloc[:2].assign(shop=pd.Categorical(["zz", None]))
    nan = codes.iloc[:2].assign(shop=np.array([np.nan, np.nan], dtype=np.float32))
    assert_allclose(m.predict_proba(new), ref.predict_proba(nan))


@pytest.mark.parametrize("suffix", ["dir", "model.zip"])
def test_save_load_round_trip(tmp_path, data, suffix):
    X, y, g = data
    frame = pd.DataFrame(X, columns=list("abcd")).assign(shop=pd.Categorical(np.where(X[:, 2] > 0, "hi", "lo")))
    m = CTCVRClassifier(structure="shared", early_stopping_rounds=2, n_estimators=30, max_depth=3, n_jobs=1).fit(
        frame, y, group=g, eval_set=[(frame.iloc[:300], y[:300])]
    )
    m.save_model(tmp_path / suffix)
    again = CTCVRClassifier.load_model(tmp_path / suffix)
    assert again.get_params() == m.get_params() and again.structure == "shared"
    assert_array_equal(again.predict_proba(frame), m.predict_proba(frame))
    assert again.n_rounds_ == m.n_rounds_ and again.best_iteration_ == m.best_iteration_
    assert_array_equal(again.init_margins_, m.init_margins_)
    assert list(again.categorical_codes_.categories_["shop"]) == ["hi", "lo"]


def test_early_stopping_watches_the_ctcvr_auc_of_the_last_eval_set(data):
    X, y, g = data
    Xe, ye, _ = _data(seed=3, n_groups=30)
    m = CTCVRClassifier(structure="shared", **SMALL).fit(X, y, group=g, eval_set=[(Xe, ye)])
    hist = m.evals_result_["shared"]["valid_0"]["auc_ctcvr"]
    assert len(hist) == SMALL["n_estimators"]
    assert hist[-1] == pytest.approx(m.score(Xe, ye), abs=1e-6)  # XGBoost logs 6 digits
    s = CTCVRClassifier(
        structure="shared", early_stopping_rounds=2, n_estimators=60, max_depth=3, learning_rate=0.3, n_jobs=1
    ).fit(X, y, group=g, eval_set=[(Xe, ye)])
    curve = s.evals_result_["shared"]["valid_0"]["auc_ctcvr"]
    assert s.best_iteration_ == int(np.argmax(curve)) and s.n_rounds_ == s.best_iteration_ + 1
    with pytest.raises(ValueError, match="only one class of conversions"):
        CTCVRClassifier(structure="shared", early_stopping_rounds=2, **SMALL).fit(
            X, y, group=g, eval_set=[(Xe, np.minimum(ye, 1))]
        )


def test_determinism_whatever_the_thread_count(data):
    X, y, g = data
    kw = {**SMALL, "random_state": 7, "pairs": 2}
    a = CTCVRClassifier(structure="shared", **kw).fit(X, y, group=g).predict_proba(X)
    b = CTCVRClassifier(structure="shared", **kw).fit(X, y, group=g).predict_proba(X)
    c = CTCVRClassifier(structure="shared", **{**kw, "n_jobs": 2}).fit(X, y, group=g).predict_proba(X)
    assert_array_equal(a, b)
    assert_array_equal(a, c)


def test_clone_get_params_and_grid_search_over_structure(data):
    X, y, g = data
    m = CTCVRClassifier(structure="shared", ctcvr_weight_ctr=0.3, **SMALL)
    twin = clone(m)
    assert twin.get_params() == m.get_params()
    assert twin.get_params()["structure"] == "shared" and twin.get_params()["ctcvr_weight_ctr"] == 0.3
    search = GridSearchCV(CTCVRClassifier(**SMALL), {"structure": ["chain", "shared"]}, cv=GroupKFold(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoGroupWarning)  # GridSearchCV's groups reach the splitter only
        search.fit(X, y, groups=g)
    assert search.best_params_["structure"] in ("chain", "shared")
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_refit_switching_structure_drops_the_other_structures_attributes(data):
    X, y, g = data
    m = CTCVRClassifier(**SMALL).fit(X, y, group=g)
    m.set_params(structure="shared").fit(X, y, group=g)
    assert hasattr(m, "booster_") and not hasattr(m, "ctr_booster_") and not hasattr(m, "cvr_booster_")
    m.set_params(structure="chain").fit(X, y, group=g)
    assert hasattr(m, "ctr_booster_") and not hasattr(m, "booster_")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"backend": "lightgbm"}, 'needs backend="xgboost"'),
        ({"cvr_params": {"max_depth": 2}}, "not cvr_params"),
        ({"device": "cuda"}, "CPU"),
    ],
)
def test_bad_combinations_raise(data, kw, match):
    X, y, g = data
    with pytest.raises(ValueError, match=match):
        CTCVRClassifier(structure="shared", **SMALL, **kw).fit(X, y, group=g)


@pytest.mark.parametrize("kw", [{"structure": "tree"}, {"ctcvr_weight_ctr": -1.0}])
def test_bad_parameters_raise(data, kw):
    X, y, g = data
    with pytest.raises(ValueError):
        CTCVRClassifier(**SMALL, **kw).fit(X, y, group=g)


def test_no_conversions_trains_with_a_warning(data):
    X, y, g = data
    y1 = np.minimum(y, 1)
    with pytest.warns(UserWarning, match="no conversions"):
        m = CTCVRClassifier(structure="shared", **SMALL).fit(X, y1, group=g)
    pcvr = m.predict_cvr(X)
    assert np.all(np.isfinite(pcvr)) and pcvr.max() < 1e-3


def _expected_failed_checks(estimator):
    from test_estimator import _EXPECTED_FAILED

    return _EXPECTED_FAILED


@parametrize_with_checks(
    [CTCVRClassifier(structure="shared", n_estimators=3, max_depth=2, n_jobs=1)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_shared_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y has no conversions", category=UserWarning)
        warnings.filterwarnings("ignore", category=NoGroupWarning)
        check(estimator)
