"""From a user's log to a deployed model: conversion weighting, continued training, calibration, inspection.

In memory and out of core (``fit(ParquetLog(...))``); the Dask engine's twins are in
tests/engines/test_dask_estimator.py.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from scipy.special import expit
from sklearn.model_selection import GridSearchCV, GroupKFold

from gbdt_pwiser import CTCVRClassifier, ParquetLog
from gbdt_pwiser.calibration import Calibrator, MonotoneMap, Outcomes
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.exceptions import UnsupportedError
from gbdt_pwiser.metrics import auc

SMALL = dict(n_estimators=8, max_depth=3, learning_rate=0.3, n_jobs=1, random_state=0)
BACKENDS = ["xgboost", "lightgbm"]


@pytest.fixture(scope="module")
def log():
    """A dense simulated log (enough conversions to calibrate), split by request."""
    lg = make_ad_log(1500, random_state=3, ctr=0.08, cvr=0.12)
    return train_test_split_by_group(lg, 0.3, random_state=0)


def _numeric(frame):
    return frame.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(np.float64)


# --------------------------------------------------------------------------- conversion weighting


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_conversion_weight_weighs_the_ctr_booster_only(log, backend, lam):
    train, _ = log
    X, y, g = train.X, train.y, train.group
    w = np.random.default_rng(0).uniform(0.5, 2.0, y.size)
    alpha = 2.0
    got = CTCVRClassifier(backend=backend, lam=lam, conversion_weight=alpha, **SMALL).fit(
        X, y, group=g, sample_weight=w
    )
    by_hand = CTCVRClassifier(backend=backend, lam=lam, **SMALL).fit(
        X, y, group=g, sample_weight=w * (1 + alpha * (y == 2))
    )
    plain = CTCVRClassifier(backend=backend, lam=lam, **SMALL).fit(X, y, group=g, sample_weight=w)
    # the CTR booster is the one fitted with conversion-weighted rows (its starting margin too) ...
    assert_array_equal(got.predict_ctr(X), by_hand.predict_ctr(X))
    assert got.ctr_init_margin_ == by_hand.ctr_init_margin_
    # ... the CVR booster is the unweighted one
    assert_array_equal(got.predict_cvr(X), plain.predict_cvr(X))
    assert not np.array_equal(got.predict_ctr(X), plain.predict_ctr(X))


def test_conversion_weight_raises_the_conversion_auc_of_pctr_and_is_searchable(log):
    train, test = log
    base = CTCVRClassifier(lam=0.0, **{**SMALL, "n_estimators": 30}).fit(train.X, train.y, group=train.group)
    weighted = CTCVRClassifier(lam=0.0, conversion_weight=4.0, **{**SMALL, "n_estimators": 30})
    weighted.fit(train.X, train.y, group=train.group)
    conv = test.y == 2
    assert auc(conv, weighted.predict_ctr(test.X)) > auc(conv, base.predict_ctr(test.X))
    search = GridSearchCV(CTCVRClassifier(lam=0.0, **SMALL), {"conversion_weight": [0.0, 1.0]}, cv=GroupKFold(2)).fit(
        train.X, train.y, groups=train.group
    )
    assert search.best_params_["conversion_weight"] in (0.0, 1.0)


def test_conversion_weight_bad_values(log):
    train, _ = log
    with pytest.raises(ValueError, match="conversion_weight"):
        CTCVRClassifier(conversion_weight=-1.0, **SMALL).fit(train.X, train.y, group=train.group)
    with pytest.raises(UnsupportedError, match='structure="shared"'):
        CTCVRClassifier(structure="shared", conversion_weight=1.0, **SMALL).fit(train.X, train.y, group=train.group)


# --------------------------------------------------------------------------- continued training


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"backend": "lightgbm"},
        {"pairs": 3},
        {"pairs": 3, "backend": "lightgbm"},
        {"structure": "shared"},
        {"conversion_weight": 1.0, "lam": 0.0},
        {"pair_loss": "logistic", "backend": "lightgbm"},
    ],
)
def test_continued_training_equals_one_fit(log, kw, tmp_path):
    """30 + 30 rounds (here 5 + 5) predict exactly like 60 in one go: same starting margins, round counter
    carried on (the sampled pairs of rounds 5..9 are those of the one fit)."""
    train, test = log
    X, y, g = train.X, train.y, train.group
    params = {**SMALL, "n_estimators": 5, **kw}
    once = CTCVRClassifier(**{**params, "n_estimators": 10}).fit(X, y, group=g)
    first = CTCVRClassifier(**params).fit(X, y, group=g)
    first.save_model(tmp_path / "day1.zip")
    for start in (first, str(tmp_path / "day1.zip")):
        again = CTCVRClassifier(**params).fit(X, y, group=g, init_model=start)
        assert_array_equal(again.predict_proba(test.X), once.predict_proba(test.X))
        rounds = ("n_rounds_",) if kw.get("structure") == "shared" else ("n_rounds_ctr_", "n_rounds_cvr_")
        assert all(getattr(again, r) == 10 for r in rounds)
    first.fit(X, y, group=g, init_model=first)  # the daily retrain: a model continues from itself
    assert_array_equal(first.predict_proba(test.X), once.predict_proba(test.X))


def test_continued_entire_space_cvr_sees_the_continued_ctr_booster(log):
    """With cvr_space="entire" the CVR booster's first rounds were fitted against the first fit's pCTR: the
    continued model is close to, not equal to, the one fit."""
    train, test = log
    params = {**SMALL, "n_estimators": 5, "cvr_space": "entire"}
    once = CTCVRClassifier(**{**params, "n_estimators": 10}).fit(train.X, train.y, group=train.group)
    first = CTCVRClassifier(**params).fit(train.X, train.y, group=train.group)
    again = CTCVRClassifier(**params).fit(train.X, train.y, group=train.group, init_model=first)
    assert_array_equal(again.predict_ctr(test.X), once.predict_ctr(test.X))
    assert np.corrcoef(again.predict_ctcvr(test.X), once.predict_ctcvr(test.X))[0, 1] > 0.85  # 0.90 measured


def test_continued_training_from_an_early_stopped_model_starts_at_its_best_round(log):
    train, test = log
    ev = [(test.X, test.y, test.group)]
    first = CTCVRClassifier(**{**SMALL, "n_estimators": 60, "early_stopping_rounds": 2}).fit(
        train.X, train.y, group=train.group, eval_set=ev
    )
    assert first.n_rounds_ctr_ < first.ctr_booster_.num_boosted_rounds()
    again = CTCVRClassifier(**{**SMALL, "n_estimators": 3}).fit(train.X, train.y, group=train.group, init_model=first)
    assert again.n_rounds_ctr_ == first.n_rounds_ctr_ + 3
    kept = again.ctr_booster_[: first.n_rounds_ctr_]
    import xgboost as xgb

    d = xgb.DMatrix(_numeric(test.X).iloc[:50])
    prev = first.ctr_booster_[: first.n_rounds_ctr_]
    assert_array_equal(kept.predict(d, output_margin=True), prev.predict(d, output_margin=True))


def test_continued_training_refuses_another_model(log, tmp_path):
    train, _ = log
    X, y, g = train.X, train.y, train.group
    first = CTCVRClassifier(**SMALL).fit(X, y, group=g)
    cases = [
        (CTCVRClassifier(backend="lightgbm", **SMALL), X, "backend='xgboost'"),
        (CTCVRClassifier(structure="shared", **SMALL), X, "structure='chain'"),
        (CTCVRClassifier(cvr_space="entire", **SMALL), X, "cvr_space='clicked'"),
        (CTCVRClassifier(**SMALL), X.iloc[:, :5], "same features"),
        (CTCVRClassifier(**SMALL), _numeric(X), "same features|feature types"),
    ]
    for est, Xn, match in cases:
        with pytest.raises(ValueError, match=match):
            est.fit(Xn, y, group=g, init_model=first)
    with pytest.raises(TypeError, match="init_model"):
        CTCVRClassifier(**SMALL).fit(X, y, group=g, init_model=42)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CTCVRClassifier(**SMALL).fit(X, y, group=g, init_model=CTCVRClassifier())
    with pytest.raises((ValueError, OSError), match=r"missing\.zip"):
        CTCVRClassifier(**SMALL).fit(X, y, group=g, init_model=str(tmp_path / "missing.zip"))


# --------------------------------------------------------------------------- calibration


@pytest.fixture(scope="module")
def dense():
    """A log with ~650 test conversions: enough that the test's own predicted/observed ratios are precise
    (with 75 the ratio's sampling error alone is ±12 %)."""
    return train_test_split_by_group(make_ad_log(3000, random_state=3, ctr=0.1, cvr=0.3), 0.3, random_state=0)


@pytest.fixture(scope="module")
def distorting(dense):
    """A PWiseR model that distorts pCTR (λ = 4, margins 0.3), without and with isotonic calibration."""
    train, _ = dense
    params = dict(
        lam=4.0, margin_click_only=0.3, margin_no_click=0.3, n_estimators=40, max_depth=4, n_jobs=1, random_state=0
    )
    raw = CTCVRClassifier(**params).fit(train.X, train.y, group=train.group)
    cal = CTCVRClassifier(calibration="isotonic", **params).fit(train.X, train.y, group=train.group)
    return raw, cal


def _ratios(model, test):
    pctr, pcvr = model.predict_ctr(test.X), model.predict_cvr(test.X)
    return pctr.sum() / np.sum(test.y >= 1), (pctr * pcvr).sum() / np.sum(test.y == 2)


def test_isotonic_calibration_matches_observed_rates_at_no_auc_cost(dense, distorting):
    _, test = dense
    raw, cal = distorting
    ctr_ratio, ctcvr_ratio = _ratios(cal, test)
    assert 0.9 <= ctr_ratio <= 1.1 and 0.9 <= ctcvr_ratio <= 1.1, (ctr_ratio, ctcvr_ratio, _ratios(raw, test))
    click, conv = test.y >= 1, test.y == 2
    for target, a, b in (
        (click, raw.predict_ctr(test.X), cal.predict_ctr(test.X)),
        (conv, raw.predict_ctr(test.X), cal.predict_ctr(test.X)),
        (conv, raw.predict_ctcvr(test.X), cal.predict_ctcvr(test.X)),
    ):
        assert auc(target, b) == pytest.approx(auc(target, a), abs=2e-4)  # the ends of the map only
    assert_array_equal(cal.predict_ctcvr(test.X), cal.predict_ctr(test.X) * cal.predict_cvr(test.X))
    assert set(cal.calibration_.ratios) == {"ctr", "ctcvr"}


@pytest.mark.parametrize("method,cv", [("sigmoid", 3), ("isotonic", 0.3)])
def test_calibration_methods_and_splits(log, method, cv, tmp_path):
    train, test = log
    model = CTCVRClassifier(calibration=method, calibration_cv=cv, **{**SMALL, "n_estimators": 20})
    model.fit(train.X, train.y, group=train.group)
    plain = CTCVRClassifier(**{**SMALL, "n_estimators": 20}).fit(train.X, train.y, group=train.group)
    conv = test.y == 2
    assert auc(conv, model.predict_ctcvr(test.X)) == pytest.approx(auc(conv, plain.predict_ctcvr(test.X)), abs=2e-4)
    model.save_model(tmp_path / "m")
    again = CTCVRClassifier.load_model(tmp_path / "m")
    assert_array_equal(again.predict_proba(test.X), model.predict_proba(test.X))
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["fitted"]["calibration_"]["ctr"]["method"] == method


def test_calibration_bad_settings(log):
    train, _ = log
    for kw in (
        {"calibration": "platt"},
        {"calibration": "isotonic", "calibration_cv": 1},
        {"calibration": "isotonic", "calibration_cv": 1.5},
    ):
        with pytest.raises(ValueError, match="calibration"):
            CTCVRClassifier(**SMALL, **kw).fit(train.X, train.y, group=train.group)
    tiny = train.take(np.flatnonzero(np.isin(train.group, np.unique(train.group)[:3])))
    with pytest.raises(ValueError, match="calibration"):
        CTCVRClassifier(calibration="isotonic", calibration_cv=10, **SMALL).fit(tiny.X, tiny.y, group=tiny.group)


def test_monotone_maps_are_strictly_increasing_and_round_trip():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.3, 20000)
    y = rng.random(p.size) < np.clip(1.5 * p, 0, 1)
    out = Outcomes.of(p, y)
    assert out.ratio() == pytest.approx(p.sum() / y.sum())
    for method in ("isotonic", "sigmoid"):
        m = MonotoneMap.fit(out, method)
        grid = np.linspace(0.05, 0.25, 500)
        assert np.all(np.diff(m(grid)) > 0), method  # no ties inside the calibrated range
        again = MonotoneMap.from_json(json.loads(json.dumps(m.to_json())))
        assert_array_equal(again(grid), m(grid))
        fitted = Outcomes.of(m(p), y)
        assert fitted.ratio() == pytest.approx(1.0, abs=0.03)
    cal = Calibrator(MonotoneMap.fit(out, "isotonic"), MonotoneMap.fit(out, "isotonic"), {"ctr": 1.0})
    c, v = cal.apply(p, np.full(p.size, 0.5))
    assert np.all((v >= 0) & (v <= 1)) and np.all(c * v <= c + 1e-15)


# --------------------------------------------------------------------------- out of core


def _write_shards(folder, frame, n_shards=3):
    folder.mkdir()
    req = frame["req"].unique()
    shard_of = pd.Series(np.arange(req.size) % n_shards, index=req)
    for s in range(n_shards):
        frame[frame["req"].map(shard_of) == s].sort_values("req", kind="stable").to_parquet(
            folder / f"part-{s}.parquet", index=False
        )
    return pd.concat(
        [frame[frame["req"].map(shard_of) == s].sort_values("req", kind="stable") for s in range(n_shards)],
        ignore_index=True,
    )


def test_out_of_core_workflow_equals_in_memory(log, tmp_path):
    """Conversion weighting, continued training and calibration give the in-memory model out of core."""
    train, test = log
    frame = _numeric(train.X).iloc[:, :8].set_axis([f"f{i}" for i in range(8)], axis=1)
    frame["y"], frame["req"] = train.y, train.group
    full = _write_shards(tmp_path / "log", frame)
    feats = [f"f{i}" for i in range(8)]
    params = {**SMALL, "n_estimators": 5, "conversion_weight": 1.0, "calibration": "isotonic"}
    plog = ParquetLog(tmp_path / "log", label="y", group="req", cache_dir=tmp_path)
    ooc = CTCVRClassifier(**params).fit(plog)
    mem = CTCVRClassifier(**params).fit(full[feats], full["y"], group=full["req"])
    Xt = _numeric(test.X).iloc[:, :8].set_axis(feats, axis=1)
    assert_array_equal(ooc.predict_proba(Xt), mem.predict_proba(Xt))
    assert_array_equal(ooc.calibration_.ctcvr.x, mem.calibration_.ctcvr.x)
    assert not list(tmp_path.glob("gbdt-pwiser-extmem-*"))


def test_out_of_core_continued_training_starts_from_exact_margins(log, tmp_path):
    """The daily retrain out of core: XGBoost predicts a continued booster on its quantised external-memory
    pages from bins (where yesterday's split values fall between today's cuts a row's start is off); the
    engine corrects the start to the booster's exact margins, so today's CTR booster is the in-memory one."""
    train, test = log
    feats = [f"f{i}" for i in range(8)]
    frame = _numeric(train.X).iloc[:, :8].set_axis(feats, axis=1)
    frame["y"], frame["req"] = train.y, train.group
    day1 = frame[frame["req"] % 2 == 0]
    day2 = frame[frame["req"] % 2 == 1].assign(f0=lambda d: d["f0"] * 1.7 + 0.3)  # other values, other cuts
    full2 = _write_shards(tmp_path / "day2", day2)
    params = {**SMALL, "n_estimators": 5}
    yesterday = CTCVRClassifier(**params).fit(day1[feats], day1["y"], group=day1["req"])
    plog = ParquetLog(tmp_path / "day2", label="y", group="req", cache_dir=tmp_path)
    ooc = CTCVRClassifier(**params).fit(plog, init_model=yesterday)
    mem = CTCVRClassifier(**params).fit(full2[feats], full2["y"], group=full2["req"], init_model=yesterday)
    Xt = _numeric(test.X).iloc[:, :8].set_axis(feats, axis=1)
    assert_array_equal(ooc.predict_ctr(Xt), mem.predict_ctr(Xt))
    # the clicked-space CVR booster continues with a custom log-loss out of core (XGBoost's native one cannot
    # be given corrected margins): the same up to float rounding
    np.testing.assert_allclose(ooc.predict_cvr(Xt), mem.predict_cvr(Xt), rtol=1e-5)
    assert ooc.n_rounds_ctr_ == 10
    assert not list(tmp_path.glob("gbdt-pwiser-extmem-*"))


# --------------------------------------------------------------------------- inspection


@pytest.mark.parametrize("backend", BACKENDS)
def test_importances_and_contributions(log, backend):
    train, test = log
    model = CTCVRClassifier(backend=backend, **SMALL).fit(train.X, train.y, group=train.group)
    imp = model.feature_importances()
    assert list(imp.columns) == ["ctr_gain", "ctr_split", "cvr_gain", "cvr_split"]
    assert list(imp.index) == list(train.X.columns) and (imp.to_numpy() >= 0).all() and imp["ctr_split"].sum() > 0
    parts = model.predict_contributions(test.X)
    for name, p in (("ctr", model.predict_ctr(test.X)), ("cvr", model.predict_cvr(test.X))):
        assert list(parts[name].columns) == [*train.X.columns, "bias"]
        np.testing.assert_allclose(expit(parts[name].sum(axis=1).to_numpy()), p, rtol=1e-5)
    shared = CTCVRClassifier(structure="shared", **SMALL).fit(train.X, train.y, group=train.group)
    assert list(shared.feature_importances().columns) == ["shared_gain", "shared_split"]
    with pytest.raises(UnsupportedError, match="SHAP"):
        shared.predict_contributions(test.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        nocv = CTCVRClassifier(backend=backend, **SMALL).fit(train.X, np.minimum(train.y, 1), group=train.group)
    assert nocv.feature_importances()["cvr_gain"].isna().all()
    np.testing.assert_allclose(expit(nocv.predict_contributions(test.X)["cvr"].sum(axis=1)), nocv.predict_cvr(test.X))
