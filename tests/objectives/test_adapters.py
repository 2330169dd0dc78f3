"""The booster adapters: label shapes, degenerate labels, NaN labels, round counting, data caching."""

import importlib.util
import os
import subprocess
import sys
import warnings

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from reference import assert_handed_to_booster

import gbdt_pwiser.objectives._adapters as A
from gbdt_pwiser import EntireSpaceCVRObjective, PWiseRObjective, funnel_label, initial_margin, prepare_data
from gbdt_pwiser._validation import check_labels, check_lam_margins, check_n_jobs
from gbdt_pwiser.objectives import NoConversionWarning

XGB_NEW = importlib.util.find_spec("xgboost.objective") is not None  # XGBoost >= 3.2 passes the round


def _data(seed=0, n_groups=40, size=10, d=4):
    rng = np.random.default_rng(seed)
    n = n_groups * size
    X = rng.normal(size=(n, d))
    click = rng.random(n) < 1 / (1 + np.exp(-(X[:, 1] - 1.0)))
    conv = click & (rng.random(n) < 1 / (1 + np.exp(-(2 * X[:, 0] - 1.0))))
    y = funnel_label(click.astype(int), conv.astype(int))
    qid = np.repeat(np.arange(n_groups), size)
    return X, y, qid


def _params(y, nthread=1):
    return {
        "tree_method": "hist",
        "max_depth": 3,
        "eta": 0.3,
        "nthread": nthread,
        "seed": 0,
        "base_score": initial_margin(y),
        "disable_default_eval_metric": 1,
    }


@pytest.fixture
def spy_rounds(monkeypatch):
    """Rounds seen by PWiseRObjective._compute (on the class: LightGBM deep-copies its params)."""
    seen = []
    real = PWiseRObjective._compute

    def spy(self, z, data, iteration, reuse):
        seen.append(iteration)
        return real(self, z, data, iteration, reuse)

    monkeypatch.setattr(PWiseRObjective, "_compute", spy)
    return seen


@pytest.fixture
def spy_prepare(monkeypatch):
    """Row counts of the data prepared by PWiseRObjective._prepare."""
    calls = []
    real = PWiseRObjective._prepare

    def spy(self, y, w, ptr):
        calls.append(y.size)
        return real(self, y, w, ptr)

    monkeypatch.setattr(PWiseRObjective, "_prepare", spy)
    return calls


# ---------------------------------------------------------------- 1. two label columns
TWO_COLS = (
    r"has 2 columns \(shape \(\d+, 2\)\); PWiseR needs one funnel label column"
    r".*funnel_label\(click, conversion\)"
)


def test_two_column_dmatrix_label_in_xgb_train_names_funnel_label():
    X, y, _ = _data()
    Y2 = np.c_[y >= 1, y == 2].astype(float)
    with pytest.raises(ValueError, match="DMatrix label " + TWO_COLS):
        xgb.train(_params(y), xgb.DMatrix(X, label=Y2), 2, obj=PWiseRObjective())
    # the plain callable form too, with the 2-D predictions XGBoost then makes
    with pytest.raises(ValueError, match="DMatrix label " + TWO_COLS):
        PWiseRObjective()(np.zeros((y.size, 2)), xgb.DMatrix(X, label=Y2))


def test_two_column_label_in_xgb_sklearn_wrapper_names_funnel_label():
    X, y, _ = _data()
    Y2 = np.c_[y >= 1, y == 2].astype(float)
    with pytest.raises(ValueError, match="y_true " + TWO_COLS):
        xgb.XGBRegressor(objective=PWiseRObjective(), n_estimators=2).fit(X, Y2)
    with pytest.raises(ValueError, match="y " + TWO_COLS):
        PWiseRObjective().grad_hess(np.zeros(y.size), Y2)


def test_lightgbm_rejects_two_column_labels_itself():
    X, y, _ = _data()
    Y2 = np.c_[y >= 1, y == 2].astype(float)
    with pytest.raises(ValueError, match="1d array"):
        lgb.LGBMRegressor(objective=PWiseRObjective(), n_estimators=2, verbose=-1).fit(X, Y2)
    with pytest.raises(TypeError, match="label"):
        lgb.train({"objective": PWiseRObjective(), "verbose": -1}, lgb.Dataset(X, label=Y2), 1)


# ---------------------------------------------------------------- 2. no conversion
def _no_conv_warnings(record):
    return [w for w in record if issubclass(w.category, NoConversionWarning)]


def test_click_only_labels_warn_once_per_training_data_in_every_adapter():
    X, y, qid = _data()
    click = (y >= 1).astype(float)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        d = xgb.DMatrix(X, label=click, qid=qid)
        obj = PWiseRObjective(lam=1.0)
        xgb.train(_params(y), d, 4, obj=obj)
        xgb.train(_params(y), d, 4, obj=obj)  # same training data: no second warning
        assert len(_no_conv_warnings(rec)) == 1
        assert "no conversion (label 2)" in str(_no_conv_warnings(rec)[0].message)
        assert "click + conversion" in str(_no_conv_warnings(rec)[0].message)
        lgb.train(
            {"objective": PWiseRObjective(), "verbose": -1, "num_threads": 1},
            lgb.Dataset(X, label=click, group=np.full(40, 10)),
            3,
        )
        assert len(_no_conv_warnings(rec)) == 2
        xgb.XGBRegressor(objective=PWiseRObjective(), n_estimators=3, nthread=1).fit(X, click)
        assert len(_no_conv_warnings(rec)) == 3
        lgb.LGBMRegressor(objective=PWiseRObjective(), n_estimators=3, verbose=-1).fit(X, click)
        assert len(_no_conv_warnings(rec)) == 4


def test_no_conversion_warning_not_for_grad_hess_lambda_zero_or_real_funnel_labels():
    X, y, qid = _data()
    click = (y >= 1).astype(np.int8)
    assert issubclass(NoConversionWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoConversionWarning)
        PWiseRObjective().grad_hess(np.zeros(y.size), click, qid)  # per call: never
        xgb.train(_params(y), xgb.DMatrix(X, label=click), 2, obj=PWiseRObjective(lam=0.0))
        xgb.train(_params(y), xgb.DMatrix(X, label=y, qid=qid), 2, obj=PWiseRObjective())
        xgb.train(_params(y), xgb.DMatrix(X, label=click), 2, obj=EntireSpaceCVRObjective(np.full(y.size, 0.3)))


# ---------------------------------------------------------------- 3. NaN labels
def test_lightgbm_turns_nan_labels_into_zero_when_it_constructs_a_dataset():
    # Pins LightGBM's behaviour that the objective cannot undo: after construction
    # neither get_label() nor .label keeps the NaN, so it must be caught before.
    X, y, _ = _data()
    yn = y.astype(float)
    yn[3] = np.nan
    ds = lgb.Dataset(X, label=yn, free_raw_data=False)
    assert np.isnan(ds.label[3]) and np.isnan(ds.get_label()[3])  # not constructed yet
    ds.construct()
    assert ds.get_label()[3] == 0 and ds.label[3] == 0
    assert np.isnan(yn[3])  # the user's array is untouched


def test_nan_labels_are_rejected_wherever_they_still_reach_the_objective():
    X, y, _ = _data()
    yn = y.astype(float)
    yn[3] = np.nan
    z = np.zeros(y.size)
    with pytest.raises(ValueError, match=r"Dataset label contains 1 NaN or infinite label.*index 3"):
        PWiseRObjective()(z, lgb.Dataset(X, label=yn))  # an unconstructed Dataset
    with pytest.raises(ValueError, match="y_true contains 1 NaN"):
        PWiseRObjective()(yn, z)
    with pytest.raises(ValueError, match="NaN"):
        lgb.LGBMRegressor(objective=PWiseRObjective(), n_estimators=2, verbose=-1).fit(X, yn)
    with pytest.raises(Exception, match="NaN"):
        xgb.DMatrix(X, label=yn)


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.nan, "NaN or infinite"),
        (np.inf, "NaN or infinite"),
        (-np.inf, "NaN or infinite"),
        (0.5, "integral"),
        (-1.0, "found -1.0"),
        (3.0, "found 3.0"),
        (258.0, "found 258.0"),
        (-254.0, "found -254.0"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_label_check_rejects_every_bad_value(bad, msg, dtype):
    y = np.array([0, 1, 2, 1, 0], dtype=dtype)
    assert check_labels(y).dtype == np.int8 and list(check_labels(y)) == [0, 1, 2, 1, 0]
    y[2] = bad
    with pytest.raises(ValueError, match=msg):
        check_labels(y)


@pytest.mark.parametrize("kw", [{}, {"pairs": 2}, {"lam": 0.0}, {"pair_loss": "logistic"}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("convention", ["dmatrix", "dataset", "sklearn"])
def test_non_finite_predictions_are_named_in_every_convention(kw, dtype, convention):
    """A booster's margins are not checked before the kernels (they count NaN and ±inf as they read
    them); the error names the predictions, the count and the first row, as check_margin's does."""
    X, y, qid = _data(n_groups=200, size=10)
    n = y.size
    obj = PWiseRObjective(**kw)
    if convention == "dmatrix":
        d = xgb.DMatrix(X, label=y, qid=qid)
        call = lambda z: obj(z, d)
    elif convention == "dataset":
        ds = lgb.Dataset(X, label=y, group=np.full(200, 10), params={"verbose": -1}).construct()
        call = lambda z: obj(z, ds)
    else:
        call = lambda z: obj(y, z, None, np.full(200, 10))
    z = np.random.default_rng(1).normal(size=n).astype(dtype)
    g, h = (a.copy() for a in call(z))  # finite margins: no error, and the values of grad_hess
    want = obj.grad_hess(z, y, group=qid)
    assert_handed_to_booster(g, want[0], rtol=0)
    assert_handed_to_booster(h, want[1], rtol=0)
    for bad, rows_ in [(np.nan, [1999]), (np.inf, [0]), (-np.inf, [1003, 17])]:
        zb = z.copy()
        zb[rows_] = bad
        with pytest.raises(
            ValueError,
            match=rf"predictions contains {len(rows_)} NaN or infinite value\(s\) \(first at index {min(rows_)}\)",
        ):
            call(zb)
        assert np.array_equal(call(z)[0], g)  # the next round with finite margins is fine
    if convention == "dmatrix":  # a 2-D column of margins too
        with pytest.raises(ValueError, match="predictions contains 1 NaN"):
            call(np.where(np.arange(n) == 5, np.nan, z)[:, None].astype(dtype))


# ---------------------------------------------------------------- 4. round counting
@pytest.mark.skipif(not XGB_NEW, reason="XGBoost < 3.2 passes no round")
def test_xgboost_passes_the_true_round_and_a_new_run_restarts_at_zero(spy_rounds):
    X, y, qid = _data()
    d = xgb.DMatrix(X, label=y, qid=qid)
    obj = PWiseRObjective(pairs=2, random_state=3)
    seen = spy_rounds
    b1 = xgb.train(_params(y), d, 5, obj=obj)
    assert seen == [0, 1, 2, 3, 4] and obj.iteration_ == 5
    b2 = xgb.train(_params(y), d, 5, obj=obj)
    assert seen[5:] == [0, 1, 2, 3, 4]
    assert b1.save_raw() == b2.save_raw()
    # training continuation: xgb.train counts its own loop from 0 again, and that is what is passed
    xgb.train(_params(y), d, 3, obj=obj, xgb_model=b1)
    assert seen[10:] == [0, 1, 2]
    # a plain Booster.update loop passes its own round
    bst = xgb.Booster(_params(y), [d])
    for i in range(3):
        bst.update(d, 7 + i, fobj=obj)
    assert seen[13:] == [7, 8, 9]


@pytest.mark.skipif(not XGB_NEW, reason="XGBoost < 3.2 passes no round")
def test_round_is_passed_also_when_gbdt_pwiser_is_imported_before_xgboost():
    code = (
        "import numpy as np\n"
        "from gbdt_pwiser import PWiseRObjective\n"
        "import xgboost as xgb\n"
        "rng = np.random.default_rng(0); X = rng.normal(size=(200, 3)); y = rng.integers(0, 3, 200)\n"
        "obj = PWiseRObjective(pairs=1); seen = []; real = obj._compute\n"
        "obj._compute = lambda z, d, it, reuse: (seen.append(it), real(z, d, it, reuse))[1]\n"
        "d = xgb.DMatrix(X, label=y)\n"
        "b = xgb.train({'nthread': 1, 'max_depth': 2}, d, 3, obj=obj)\n"
        "xgb.train({'nthread': 1, 'max_depth': 2}, d, 3, obj=obj, xgb_model=b)\n"
        "from xgboost.objective import Objective\n"
        "assert isinstance(obj, Objective), 'not registered'\n"
        "print(seen)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 1, 2, 0, 1, 2]"


@pytest.mark.parametrize("nthread", [1, 2])
def test_same_random_state_same_booster_bytes_whatever_the_thread_count(nthread):
    X, y, qid = _data(n_groups=60)
    d = xgb.DMatrix(X, label=y, qid=qid)
    ref = xgb.train(_params(y, 1), d, 6, obj=PWiseRObjective(pairs=2, random_state=5, n_jobs=1)).save_raw()
    got = xgb.train(_params(y, nthread), d, 6, obj=PWiseRObjective(pairs=2, random_state=5, n_jobs=nthread))
    assert got.save_raw() == ref
    other = xgb.train(_params(y, nthread), d, 6, obj=PWiseRObjective(pairs=2, random_state=6, n_jobs=nthread))
    assert other.save_raw() != ref


def test_lightgbm_rounds_are_counted_and_restart_for_a_new_run(spy_rounds):
    X, y, _ = _data()
    ds = lgb.Dataset(X, label=y, group=np.full(40, 10), init_score=np.full(y.size, initial_margin(y)))
    obj = PWiseRObjective(pairs=2)
    seen = spy_rounds
    params = {"objective": obj, "verbose": -1, "num_threads": 1, "deterministic": True}
    m1 = lgb.train(params, ds, 4)
    m2 = lgb.train(params, ds, 4)
    assert seen == [0, 1, 2, 3, 0, 1, 2, 3]
    assert_allclose(m1.predict(X, raw_score=True), m2.predict(X, raw_score=True), rtol=0, atol=0)


@pytest.mark.parametrize("n", [50, 300_001])
def test_a_new_run_is_the_first_rounds_margins_at_every_fingerprinted_row(n):
    """A round's margins start a new run only if they equal the first round's at every fingerprinted
    row: the 16 probed first, the whole fingerprint when those match."""
    obj = PWiseRObjective()
    z0 = np.random.default_rng(0).normal(size=n)
    obj._next_round(z0, False)
    assert obj.iteration_ == 1
    step = max(1, n // obj._FINGERPRINT)
    fp_rows = np.arange(0, n, step)
    probed = fp_rows[:: obj._PROBE]
    others = np.setdiff1d(fp_rows, probed)
    for rows_, restart in ((others[len(others) // 2 :], False), (probed[-1:], False), ([], True)):
        z = z0.copy()
        z[np.setdiff1d(np.arange(n), fp_rows)] += 1.0  # rows outside the fingerprint never count
        z[rows_] += 1.0
        obj.iteration_ = 5
        assert obj._next_round(z, True) == (0 if restart else 5), (len(rows_), restart)


# ---------------------------------------------------------------- 5. no per-round re-hash
@pytest.mark.parametrize(
    "make",
    [
        lambda obj: xgb.XGBRegressor(objective=obj, n_estimators=5, nthread=1, max_depth=2),
        lambda obj: lgb.LGBMRegressor(objective=obj, n_estimators=5, verbose=-1, n_jobs=1),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_sklearn_wrapper_prepares_and_validates_once_per_fit(make, weighted, monkeypatch, spy_prepare):
    # XGBRegressor passes fresh label/weight copies every round, LGBMRegressor the same
    # arrays (and LightGBM deep-copies the objective once per fit): 5 rounds, 1 preparation.
    X, y, _ = _data()
    checks = []
    real_check = A.check_labels
    monkeypatch.setattr(A, "check_labels", lambda *a, **k: (checks.append(1), real_check(*a, **k))[1])
    obj = PWiseRObjective()
    sw = np.linspace(0.5, 1.5, y.size) if weighted else None
    ref = make(obj).fit(X, y, sample_weight=sw).predict(X)
    assert spy_prepare == [y.size] and len(checks) == 1
    y2 = y.copy()
    y2[-1] = 2 - y2[-1] if y2[-1] != 1 else 0  # one label differs
    got = make(obj).fit(X, y2, sample_weight=sw).predict(X)
    assert len(spy_prepare) == 2
    fresh = make(PWiseRObjective()).fit(X, y2, sample_weight=sw).predict(X)
    assert_allclose(got, fresh, rtol=0, atol=0)
    assert not np.array_equal(ref, got)
    if weighted:
        sw2 = sw.copy()
        sw2[7] += 1.0
        make(obj).fit(X, y2, sample_weight=sw2)
        assert len(spy_prepare) == 4


def test_lgbm_ranker_groups_are_part_of_the_cached_data(spy_prepare):
    X, y, _ = _data()
    obj = PWiseRObjective()
    calls = spy_prepare
    lgb.LGBMRanker(objective=obj, n_estimators=3, verbose=-1, n_jobs=1).fit(X, y, group=np.full(40, 10))
    assert len(calls) == 1
    lgb.LGBMRanker(objective=obj, n_estimators=3, verbose=-1, n_jobs=1).fit(X, y, group=np.full(20, 20))
    assert len(calls) == 2


def test_direct_sklearn_calls_detect_new_data_and_in_place_edits(spy_prepare):
    _, y, _ = _data()
    z = np.zeros(y.size)
    obj = PWiseRObjective()
    calls = spy_prepare
    yf = y.astype(np.float32)
    g1, _ = obj(yf, z)
    obj(yf, z)
    obj(yf.copy(), z)
    assert len(calls) == 1
    yf[0] = 2.0 if yf[0] != 2 else 0.0  # same object, edited (row 0 is in the sample)
    g2, _ = obj(yf, z)
    assert len(calls) == 2
    assert_handed_to_booster(g2, PWiseRObjective().grad_hess(z, yf)[0])
    assert not np.allclose(g1, g2)
    obj(yf, z, np.ones(y.size))  # weights appear: new data
    assert len(calls) == 3
    obj(yf, z, None, np.full(40, 10))  # groups appear: new data
    assert len(calls) == 4
    # a failed preparation does not leave the old data cached
    with pytest.raises(ValueError, match="group sizes sum to"):
        obj(yf, z, None, np.full(40, 3))
    obj(yf, z, None, np.full(40, 10))
    assert len(calls) == 5


def test_whole_grad_hess_with_contiguous_ids_neither_hashes_nor_sorts_all_rows(monkeypatch):
    import pandas as pd

    _, y, qid = _data(n_groups=500, size=8)
    sizes = []
    real_unique, real_sort = np.unique, np.sort
    monkeypatch.setattr(np, "unique", lambda a, *args, **kw: (sizes.append(np.size(a)), real_unique(a, *args, **kw))[1])
    monkeypatch.setattr(np, "sort", lambda a, *args, **kw: (sizes.append(np.size(a)), real_sort(a, *args, **kw))[1])
    monkeypatch.setattr(pd, "factorize", lambda *a, **k: pytest.fail("hashed the group ids"))
    obj = PWiseRObjective()
    g, h = obj.grad_hess(np.zeros(y.size), y, group=qid)
    assert not sizes  # rising run ids: neither a sort nor a unique
    z = np.linspace(-1, 1, y.size)
    g2, h2 = obj.grad_hess(z, y, group=-qid)  # falling run ids: a sort of the run ids only
    assert sizes and max(sizes) <= 500 < y.size
    monkeypatch.undo()
    rg, rh = PWiseRObjective().grad_hess(np.zeros(y.size), y, group=qid.astype(str))
    assert_allclose(g, rg, rtol=1e-12)
    assert_allclose(h, rh, rtol=1e-12)
    rg, rh = PWiseRObjective().grad_hess(z, y, group=(-qid).astype(str))
    assert_allclose(g2, rg, rtol=1e-12)
    assert_allclose(h2, rh, rtol=1e-12)


# ---------------------------------------------------------------- 6. one definition of each check
def test_one_n_jobs_check_for_both_objectives():
    assert check_n_jobs(None) is None and check_n_jobs(-1) == -1 and check_n_jobs(np.int64(3)) == 3
    for bad in (0, True, 1.5, "2"):
        with pytest.raises(ValueError, match="n_jobs must be None, -1 or a positive int"):
            check_n_jobs(bad)
        with pytest.raises(ValueError, match="n_jobs must be None, -1 or a positive int"):
            PWiseRObjective(n_jobs=bad)
        with pytest.raises(ValueError, match="n_jobs must be None, -1 or a positive int"):
            EntireSpaceCVRObjective(n_jobs=bad)


def test_lam_and_margins_use_the_one_number_check():
    assert check_lam_margins(1, 0.0, np.float32(0.5)) == (1.0, 0.0, 0.5)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        check_lam_margins(-1, 0, 0)
    with pytest.raises(TypeError, match="margin_no_click must be a real number"):
        check_lam_margins(1, 0, "x")


@given(
    st.lists(
        st.sampled_from([0.0, 1.0, 2.0, -0.0, 0.5, -1.0, 3.0, 258.0, -254.0, np.nan, np.inf]), min_size=1, max_size=30
    ),
    st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint8]),
)
@settings(max_examples=200, deadline=None)
def test_label_check_agrees_with_a_naive_reference(values, dtype):
    arr = np.array(values, dtype=np.float64)
    if np.dtype(dtype).kind in "iu":
        arr = arr[np.isfinite(arr) & (arr == np.round(arr))]
        if np.dtype(dtype).kind == "u":
            arr = arr[arr >= 0]
        arr = arr[(arr >= np.iinfo(dtype).min) & (arr <= np.iinfo(dtype).max)]
    arr = arr.astype(dtype)
    ok = all(v in (0, 1, 2) for v in arr.tolist())  # NaN compares unequal to all
    if ok:
        out = check_labels(arr)
        assert out.dtype == np.int8 and out.tolist() == [int(v) for v in arr.tolist()]
    else:
        with pytest.raises(ValueError, match="y "):
            check_labels(arr)


def test_preparation_and_initial_margin_make_no_blas_call(monkeypatch):
    """np.dot over > 10,000 groups wakes OpenBLAS's worker thread, which then spins ~0.1 s against
    the booster's threads (the LightGBM overhead at 300k rows); preparation must not call BLAS."""
    from gbdt_pwiser import initial_margin, prepare_data

    rng = np.random.default_rng(0)
    n_groups, size = 12_000, 3
    y = rng.choice(np.array([0, 1, 2], dtype=np.int8), size=n_groups * size, p=[0.6, 0.3, 0.1])
    group = np.repeat(np.arange(n_groups), size)
    w = rng.uniform(0.5, 2.0, y.size)
    expected = prepare_data(y, group, w)

    def no_dot(*args, **kwargs):
        raise AssertionError("np.dot called during preparation")

    monkeypatch.setattr(np, "dot", no_dot)
    data = prepare_data(y, group, w)
    assert data.pair_weight_c == pytest.approx(expected.pair_weight_c, rel=1e-12)
    assert data.pair_weight_n == pytest.approx(expected.pair_weight_n, rel=1e-12)
    assert np.isfinite(initial_margin(y, w))


# ----------------------------------------------------------------- threads: the booster's inside training


def _spy_threads(monkeypatch, cls):
    """(in_booster, threads) of every pass of ``cls``, for inputs of 10^6 rows (no small-input rule)."""
    seen = []
    real = cls._threads

    def spy(self, in_booster, n_rows):
        seen.append((in_booster, real(self, in_booster, 10**6)))
        return real(self, in_booster, n_rows)

    monkeypatch.setattr(cls, "_threads", spy)
    return seen


@pytest.fixture
def spy_threads(monkeypatch):
    return _spy_threads(monkeypatch, PWiseRObjective)


def test_objective_takes_the_boosters_threads_inside_training(spy_threads, monkeypatch):
    from gbdt_pwiser import _threads
    from gbdt_pwiser.objectives._adapters import booster_threads

    monkeypatch.setattr(_threads, "available_cores", lambda: 8)
    X, y, qid = _data(n_groups=20)
    # XGBoost: the DMatrix's nthread (what XGBoost's scikit-learn wrappers and xgboost.dask set),
    # else XGBoost's global nthread, else every core (XGBoost's own default)
    for dmatrix_kw, config, want in (({"nthread": 3}, 0, 3), ({}, 0, 8), ({}, 2, 2), ({"nthread": 3}, 2, 3)):
        d = xgb.DMatrix(X, label=y, qid=qid, **dmatrix_kw)
        with xgb.config_context(nthread=config):
            assert booster_threads(d) == (None if want == 8 else want)
            spy_threads.clear()
            xgb.train(_params(y), d, 2, obj=PWiseRObjective())
        assert spy_threads == [(True, want)] * 2, (dmatrix_kw, config)
    # an explicit n_jobs wins; outside training (grad_hess) every core
    spy_threads.clear()
    xgb.train(_params(y), xgb.DMatrix(X, label=y, qid=qid, nthread=3), 1, obj=PWiseRObjective(n_jobs=2))
    PWiseRObjective().grad_hess(np.zeros(y.size), y, qid)
    assert spy_threads == [(True, 2), (False, 8)]
    # LightGBM: num_threads (or an alias) of the training parameters, which lgb.train puts in the Dataset
    for params, want in (({"num_threads": 2}, 2), ({"n_jobs": 3}, 3), ({}, 8), ({"num_threads": 0}, 8)):
        spy_threads.clear()
        ds = lgb.Dataset(X, y, group=np.full(20, 10), free_raw_data=False)
        lgb.train({"objective": PWiseRObjective(), "verbose": -1, "metric": "None", **params}, ds, 2)
        assert spy_threads == [(True, want)] * 2, params
    # the scikit-learn wrappers pass no training data: every core (their boosters' default), or n_jobs
    spy_threads.clear()
    xgb.XGBRegressor(objective=PWiseRObjective(), n_estimators=1, nthread=1).fit(X, y)
    assert spy_threads == [(True, 8)]


def test_entire_space_label_objective_takes_the_boosters_threads(monkeypatch):
    """The distributed entire-space objective reads the booster's threads from its training data too."""
    from gbdt_pwiser import _threads
    from gbdt_pwiser.objectives.distributed import EntireSpaceLabelObjective, entire_space_label

    monkeypatch.setattr(_threads, "available_cores", lambda: 8)
    seen = _spy_threads(monkeypatch, EntireSpaceLabelObjective)
    X, y, _ = _data(n_groups=20)
    lab = entire_space_label(y, np.random.default_rng(0).uniform(0.05, 0.9, y.size))
    params = {"tree_method": "hist", "max_depth": 2, "base_score": 0.0, "disable_default_eval_metric": 1}
    # a DMatrix's nthread, else XGBoost's global one (XGBoost does not restore a global 0 once a
    # config_context has set another: earlier tests may have left one), else every core
    for kw, want in (({"nthread": 3}, 3), ({}, xgb.get_config()["nthread"] or 8)):
        seen.clear()
        xgb.train(params, xgb.DMatrix(X, label=lab, **kw), 2, obj=EntireSpaceLabelObjective())
        assert seen == [(True, want)] * 2, kw
    for kw, want in (({"num_threads": 2}, 2), ({}, 8)):
        seen.clear()
        lgb.train(
            {"objective": EntireSpaceLabelObjective(), "verbose": -1, "metric": "None", **kw}, lgb.Dataset(X, lab), 2
        )
        assert seen == [(True, want)] * 2, kw
    seen.clear()
    EntireSpaceLabelObjective(n_jobs=2)(lab, np.zeros(y.size))  # the scikit-learn form: n_jobs
    assert seen == [(True, 2)]


def test_gradients_are_the_same_bits_on_any_number_of_threads():
    """Every pass cut into 1..5 parts gives the gradients of one thread, bit for bit (also the sampled
    mode and groups given as unsorted ids, which take the two-pass path)."""
    rng = np.random.default_rng(3)
    n = 400_003  # 6 x ROWS_PER_THREAD: up to 6 threads honoured
    click = rng.random(n) < 0.2
    y = funnel_label(click.astype(int), (click & (rng.random(n) < 0.3)).astype(int))
    z = rng.normal(-1, 1.5, n).astype(np.float32)
    w = rng.uniform(0.5, 2.0, n)
    ids = np.repeat(np.arange(n // 20 + 1), 20)[:n]
    for kw in ({}, {"pairs": 3}, {"pair_loss": "logistic"}, {"lam": 0.0}):
        for group in (ids, rng.permutation(ids)):
            ref = PWiseRObjective(n_jobs=1, **kw).grad_hess(z, y, group, w, iteration=4)
            for threads in (2, 3, 5):
                got = PWiseRObjective(n_jobs=threads, **kw).grad_hess(z, y, group, w, iteration=4)
                assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1]), (kw, threads)
            loss = [PWiseRObjective(n_jobs=t, **kw).loss(z, y, group, w) for t in (1, 2, 3)]
            assert loss[0] == loss[1] == loss[2]  # sums over fixed blocks, added in order


# --------------------------------------------------------------------------- what a booster is handed


def _unrounded(obj):
    """``obj`` whose adapters hand the booster its float64 sums (the booster then rounds them)."""
    obj._out_dtype = np.float64
    return obj


@pytest.mark.parametrize("kw", [{}, {"pairs": 3}, {"pair_loss": "logistic"}, {"lam": 0.0}])
@pytest.mark.parametrize("weighted", [False, True])
def test_adapters_hand_boosters_float32_the_float64_values_rounded_once(kw, weighted):
    X, y, qid = _data(seed=5)
    w = np.random.default_rng(6).uniform(0.5, 2.0, y.size).astype(np.float32) if weighted else None
    z = np.random.default_rng(7).normal(-1.0, 1.5, y.size).astype(np.float32)
    sizes = np.bincount(qid)
    want = PWiseRObjective(**kw).grad_hess(z, y, group=qid, weight=w)  # round 0: the first call
    handed = {
        "Dataset": PWiseRObjective(**kw)(z, lgb.Dataset(X, label=y, group=sizes, weight=w).construct()),
        "scikit-learn": PWiseRObjective(**kw)(y, z, w, sizes),
    }
    if w is None:  # with qid, a DMatrix keeps one weight per group, not per-row weights
        handed["DMatrix"] = PWiseRObjective(**kw)(0, z, xgb.DMatrix(X, label=y, qid=qid))
    for out in handed.values():
        for got, ref in zip(out, want, strict=True):
            assert_handed_to_booster(got, ref)
    # scattered groups (the engines' group codes): the two-pass path, float64 sums then rounded
    codes = np.random.default_rng(8).permutation(qid)
    data = prepare_data(y, group=codes, weight=w)
    assert data.chunks is None
    want = PWiseRObjective(**kw).grad_hess(z, y, group=codes, weight=w, iteration=4)
    for threads in (1, 3):
        got = PWiseRObjective(**kw, n_jobs=threads)._compute(z, data, 4, reuse=True)
        for g, ref in zip(got, want, strict=True):
            assert_handed_to_booster(g, ref)


@pytest.mark.parametrize("booster", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("kw", [{}, {"pairs": 3}])
def test_float32_gradients_grow_the_model_the_booster_grew_from_float64_ones(booster, kw):
    # XGBoost and LightGBM keep gradients as float32, rounding float64 ones to nearest: the model
    # from the rounded values handed over is the model from the unrounded sums, bit for bit
    X, y, qid = _data(seed=9, n_groups=60)
    models = []
    for obj in (PWiseRObjective(**kw), _unrounded(PWiseRObjective(**kw))):
        if booster == "xgboost":
            b = xgb.train(_params(y), xgb.DMatrix(X, label=y, qid=qid), 8, obj=obj)
            models.append(b.predict(xgb.DMatrix(X), output_margin=True))
        else:
            params = {"objective": obj, "num_leaves": 7, "verbose": -1, "num_threads": 1, "deterministic": True}
            ds = lgb.Dataset(X, label=y, group=np.bincount(qid), init_score=np.full(y.size, initial_margin(y)))
            models.append(lgb.train(params, ds, 8).predict(X, raw_score=True))
    np.testing.assert_array_equal(models[0], models[1])
