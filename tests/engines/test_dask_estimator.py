"""DaskCTCVRClassifier: fits on a LocalCluster (2 process workers x 1 thread) against CTCVRClassifier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")
pytest.importorskip("lightgbm.dask")

from _dask_helpers import dask_model  # noqa: E402

from gbdt_pwiser import CTCVRClassifier  # noqa: E402
from gbdt_pwiser.dask import DaskCTCVRClassifier, partition_by_group  # noqa: E402
from gbdt_pwiser.datasets import make_ad_log  # noqa: E402
from gbdt_pwiser.metrics import conversion_auc  # noqa: E402

PARAMS = {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.2, "n_jobs": 1, "lam": 1.0}


@pytest.fixture(scope="module")
def log():
    """A simulated log with its groups scattered over the rows, and held-out rows."""

    def frame(n, seed):
        # dense (10 % CTR, 30 % of clicks convert): ~120 test conversions, so the CTCVR AUCs compared below are
        # not the rank of a handful of rows (the sparse default gave one test conversion)
        lg = make_ad_log(n, random_state=seed, ctr=0.1, cvr=0.3)
        X = lg.X.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(np.float64)
        X.columns = [f"f{i}" for i in range(X.shape[1])]
        df = X.assign(y=np.asarray(lg.y, dtype=np.int8), g=np.asarray(lg.group))
        return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)

    train, test = frame(250, 0), frame(150, 1)
    return train, test, [c for c in train.columns if c.startswith("f")]


def _ddf(df, nparts=4):
    return dd.from_pandas(df, npartitions=nparts, sort=False)


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("cvr_space", ["clicked", "entire"])
def test_fit_close_to_single_process_and_to_local_exact(client, log, backend, cvr_space, tmp_path):
    train, test, feats = log
    ddf = _ddf(train)
    model = dask_model(client, backend=backend, cvr_space=cvr_space, **PARAMS)
    model.fit(ddf[feats], ddf["y"], group=ddf["g"])
    assert model.repartitioned_ and model.n_partitions_ == 4
    local = CTCVRClassifier(backend=backend, cvr_space=cvr_space, **PARAMS).fit(
        train[feats], train["y"], group=train["g"]
    )
    yt = test["y"].to_numpy()
    auc_d, auc_l = model.score(test[feats], yt), local.score(test[feats], yt)
    # CTCVR AUCs of two different tree sets (distributed sketches) on ~120 test conversions: within 0.01 measured
    assert auc_d > 0.7 and abs(auc_d - auc_l) < 0.04, (auc_d, auc_l)
    ctr_d = conversion_auc(model.predict_ctr(test[feats]), (yt >= 1).astype(int) * 2)
    ctr_l = conversion_auc(local.predict_ctr(test[feats]), (yt >= 1).astype(int) * 2)
    assert abs(ctr_d - ctr_l) < 0.05, (ctr_d, ctr_l)

    # to_local: an ordinary CTCVRClassifier that predicts identically
    as_local = model.to_local()
    assert type(as_local) is CTCVRClassifier
    for method in ("predict_ctr", "predict_cvr", "predict_ctcvr", "predict_proba", "predict"):
        np.testing.assert_array_equal(getattr(as_local, method)(test[feats]), getattr(model, method)(test[feats]))
    # dask input: dask arrays, the same numbers
    dtest = _ddf(test, 3)
    proba = model.predict_proba(dtest[feats])
    assert hasattr(proba, "dask")
    np.testing.assert_array_equal(proba.compute(), as_local.predict_proba(dtest[feats].compute()))
    # save / load through the local model
    model.save_model(tmp_path / "m.zip")
    again = CTCVRClassifier.load_model(tmp_path / "m.zip")
    np.testing.assert_array_equal(again.predict_proba(test[feats]), model.predict_proba(test[feats]))


def test_two_column_labels_and_weights(client, log):
    train, test, feats = log
    pdf = train.assign(
        click=(train["y"] >= 1).astype(int), conv=(train["y"] == 2).astype(int), w=np.linspace(0.5, 2.0, len(train))
    )
    ddf = partition_by_group(_ddf(pdf), "g")
    model = dask_model(client, **PARAMS).fit(ddf[feats], ddf[["click", "conv"]], group=ddf["g"], sample_weight=ddf["w"])
    assert not model.repartitioned_  # already whole groups
    assert model.score(test[feats], test["y"]) > 0.7


def test_prepartitioned_and_repartitioned_fits(client, log):
    """Scattered groups are repartitioned exactly as partition_by_group does (same rows per partition)."""
    train, test, feats = log
    ddf = _ddf(train)
    a = dask_model(client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"])
    pre = partition_by_group(ddf, "g")
    b = dask_model(client, **PARAMS).fit(pre[feats], pre["y"], group=pre["g"])
    assert a.repartitioned_ and not b.repartitioned_
    pa, pb = a.predict_ctcvr(test[feats]), b.predict_ctcvr(test[feats])
    assert abs(conversion_auc(pa, test["y"]) - conversion_auc(pb, test["y"])) < 0.03


def test_lam_zero_needs_no_group(client, log):
    train, test, feats = log
    ddf = _ddf(train)
    model = dask_model(client, **{**PARAMS, "lam": 0.0}).fit(ddf[feats], ddf["y"])
    assert model.score(test[feats], test["y"]) > 0.7


@pytest.fixture(scope="module")
def parquet_folder(tmp_path_factory, log):
    """The training log written as 8 Parquet files (the README's layout), one feature a pandas category."""
    train, _, feats = log
    folder = tmp_path_factory.mktemp("exposures")
    df = train.copy()  # groups scattered over the files (fit repartitions)
    rng = np.random.default_rng(0)
    for k, idx in enumerate(np.array_split(np.arange(len(df)), 8)):
        part = df.iloc[idx].copy()
        # a category column whose files hold different categories (each file the ones it holds; 200 in all,
        # more than one file's int8 codes can index)
        part["cat"] = pd.Series(
            [f"c{v}" for v in rng.integers(0, 100, len(part)) + 100 * (k % 2)], index=part.index, dtype="category"
        )
        part.to_parquet(folder / f"part-{k}.parquet", index=False)
    return folder, feats


def test_the_readme_call_on_parquet_files(client, log, parquet_folder):
    """fit(ddf[features], ddf["y"], group=ddf["g"]) on dd.read_parquet of small files: dask's optimiser
    merges their partitions differently for different column selections, and the fit must not care."""
    _, test, _ = log
    folder, feats = parquet_folder
    ddf = dd.read_parquet(folder)
    assert ddf[feats].npartitions == ddf["y"].npartitions == 8
    model = dask_model(client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"])
    assert model.score(test[feats], test["y"]) > 0.7
    # the same data as dask Arrays, one row chunk per partition (y, group and weights)
    pdf = ddf.persist()
    arrays = {c: pdf[c].to_dask_array(lengths=True) for c in ("y", "g")}
    weighted = dask_model(client, **PARAMS).fit(
        pdf[feats], arrays["y"], group=arrays["g"], sample_weight=arrays["y"].astype(np.float64) * 0 + 1.0
    )
    np.testing.assert_array_equal(weighted.predict_proba(test[feats]), model.predict_proba(test[feats]))
    two_columns = dd.concat([pdf["y"] >= 1, pdf["y"] == 2], axis=1).astype(np.int8).to_dask_array(lengths=True)
    again = dask_model(client, **PARAMS).fit(pdf[feats], two_columns, group=arrays["g"])
    np.testing.assert_array_equal(again.predict_proba(test[feats]), model.predict_proba(test[feats]))
    with pytest.raises(ValueError, match="y has 3 partitions but X has 8"):
        model.fit(pdf[feats], arrays["y"].rechunk(len(pdf) // 3 + 1), group=arrays["g"])


def test_unknown_categories_are_made_known(client, parquet_folder):
    """dd.read_parquet of pandas categoricals leaves the categories unknown (each partition has its own)."""
    folder, feats = parquet_folder
    ddf = dd.read_parquet(folder)
    assert not ddf["cat"].cat.known
    cols = [*feats, "cat"]
    model = dask_model(client, **PARAMS).fit(ddf[cols], ddf["y"], group=ddf["g"])
    local = model.to_local()
    assert local._categorical == ["cat"]
    pdf = ddf.compute()
    np.testing.assert_array_equal(model.predict_proba(ddf[cols]).compute(), local.predict_proba(pdf[cols]))
    assert model.score(pdf[cols], pdf["y"]) > 0.7


def test_64_bit_group_ids_and_empty_partitions(client, log):
    """Request ids beyond 2**53 (dask hashes numeric shuffle keys as float64: they all met in one partition,
    and the label blocks of the empty ones were dropped), and an empty partition among whole groups."""
    train, test, feats = log
    big = train.assign(g=train["g"].to_numpy().astype(np.int64) + (2**63 - 10**6))
    ddf = _ddf(big)
    model = dask_model(client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"])
    assert model.repartitioned_ and model.score(test[feats], test["y"]) > 0.7
    # whole groups in one partition and an empty one: LightGBM fails on a worker holding only empty data
    whole = partition_by_group(_ddf(train), "g", npartitions=1)
    gappy = dd.concat([dd.from_pandas(train.iloc[:0], npartitions=1), whole])
    assert gappy.map_partitions(len).compute().tolist()[0] == 0
    for backend in ("xgboost", "lightgbm"):
        again = dask_model(client, backend=backend, **PARAMS).fit(gappy[feats], gappy["y"], group=gappy["g"])
        assert not again.repartitioned_ and again.n_partitions_ == 1  # the empty one dropped
        assert again.score(test[feats], test["y"]) > 0.7


def test_bad_inputs(client, log):
    train, _, feats = log
    ddf = _ddf(train)
    est = dask_model(client, **PARAMS)
    with pytest.raises(ValueError, match="group is required when lam > 0"):
        est.fit(ddf[feats], ddf["y"])
    with pytest.raises(ValueError, match="group is required when lam > 0"):
        est.fit(ddf[feats], ddf["y"], group="all")
    with pytest.raises(ValueError, match="partitioned alike"):
        est.fit(ddf[feats], _ddf(train, 3)["y"].to_dask_array(lengths=True), group=ddf["g"])
    bad = ddf.assign(a=1, b=0)[["y", "a", "b"]]
    with pytest.raises(ValueError, match="y"):
        est.fit(ddf[feats], bad, group=ddf["g"])
    with pytest.raises(ValueError, match="y"):
        est.fit(ddf[feats], ddf["y"] + 5, group=ddf["g"])
    with pytest.raises(TypeError, match="dask DataFrame"):
        est.fit(train[feats], train["y"], group=train["g"])
    # an infinite feature: named on the worker (XGBoost's collective error read as a lost worker before)
    inf = _ddf(train.assign(f1=np.where(np.arange(len(train)) == 3, np.inf, train["f1"])))
    with pytest.raises(ValueError, match=r"X \(partition \d\): column 'f1' contains 1 infinite value"):
        est.fit(inf[feats], inf["y"], group=inf["g"])
    with pytest.raises(TypeError, match=r"sample_weight \(partition \d\) must be numeric"):
        est.fit(ddf[feats], ddf["y"], group=ddf["g"], sample_weight=ddf["g"].astype(str))
    with pytest.raises(ValueError, match="X has 0 features"):
        est.fit(ddf[[]], ddf["y"], group=ddf["g"])
    # early stopping: XGBoost only (tests/engines/test_dask_early_stopping.py), and only with an eval set
    with pytest.raises(NotImplementedError, match="backend='lightgbm'"):
        dask_model(client, backend="lightgbm").fit(
            ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(train[feats], train["y"])]
        )
    with pytest.raises(ValueError, match="needs an eval_set"):
        dask_model(client, early_stopping_rounds=3).fit(ddf[feats], ddf["y"], group=ddf["g"])
    with pytest.raises(ValueError):
        dask_model(client, lam=-1.0).fit(ddf[feats], ddf["y"], group=ddf["g"])


def test_same_parameters_as_the_local_estimator_and_a_client_property(client):
    """One definition of the parameters: the Dask estimator is CTCVRClassifier on the Dask engine."""
    import inspect

    from sklearn.base import clone

    assert DaskCTCVRClassifier().get_params() == CTCVRClassifier().get_params()
    assert inspect.signature(DaskCTCVRClassifier.__init__) == inspect.signature(CTCVRClassifier.__init__)
    assert DaskCTCVRClassifier._parameter_constraints is CTCVRClassifier._parameter_constraints
    model = DaskCTCVRClassifier(lam=2.0)
    assert model.client is client  # the current client by default
    other = object()
    model.client = other
    assert model.client is other and "client" not in model.get_params()
    assert clone(model).client is client and clone(model).lam == 2.0


@pytest.mark.parametrize("weighted", [False, True])
def test_shared_structure_on_dask(client, log, weighted):
    """structure="shared": one two-output booster trained by xgboost.dask, categories as codes."""
    train, test, feats = log
    train = train.assign(shop=pd.Categorical(train["g"] % 7), w=np.where(train["y"] == 2, 2.0, 1.0))
    test = test.assign(shop=pd.Categorical(test["g"] % 7, categories=train["shop"].cat.categories))
    cols = [*feats, "shop"]
    ddf = _ddf(train)
    params = {**PARAMS, "structure": "shared", "ctcvr_weight_ctr": 0.5}
    model = dask_model(client, **params).fit(
        ddf[cols], ddf["y"], group=ddf["g"], sample_weight=ddf["w"] if weighted else None
    )
    local = CTCVRClassifier(**params).fit(
        train[cols], train["y"], group=train["g"], sample_weight=train["w"] if weighted else None
    )
    assert hasattr(model, "booster_") and not hasattr(model, "ctr_booster_")
    assert list(model.categorical_codes_.categories_) == ["shop"]
    np.testing.assert_allclose(model.init_margins_, local.init_margins_, rtol=1e-12)
    yt = test["y"].to_numpy()
    auc_d, auc_l = model.score(test[cols], yt), local.score(test[cols], yt)
    assert auc_d > 0.7 and abs(auc_d - auc_l) < 0.08, (auc_d, auc_l)
    as_local = model.to_local()
    np.testing.assert_array_equal(as_local.predict_proba(test[cols]), model.predict_proba(test[cols]))


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_workflow_on_dask(client, log, backend):
    """Conversion weighting, continued training and calibration on the Dask engine."""
    train, test, feats = log
    ddf = _ddf(train)
    yt = test["y"].to_numpy()
    params = {**PARAMS, "n_estimators": 6, "conversion_weight": 1.0}
    first = dask_model(client, backend=backend, **params).fit(ddf[feats], ddf["y"], group=ddf["g"])
    local = CTCVRClassifier(backend=backend, **params).fit(train[feats], train["y"], group=train["g"])
    # the CTR booster starts where the local one does: the conversion-weighted click rate
    if backend == "lightgbm":
        assert first.ctr_init_margin_ == pytest.approx(local.ctr_init_margin_, rel=1e-12)
    assert abs(first.score(test[feats], yt) - local.score(test[feats], yt)) < 0.08
    again = dask_model(client, backend=backend, **params).fit(ddf[feats], ddf["y"], group=ddf["g"], init_model=first)
    assert again.n_rounds_ctr_ == 12 and again.n_rounds_cvr_ == 12
    assert again.ctr_init_margin_ == first.ctr_init_margin_
    # the first rounds are the continued model's own
    lib = again._library()
    head = lib.predict_margin(again.ctr_booster_, test[feats], 6, 1)
    np.testing.assert_allclose(head, lib.predict_margin(first.ctr_booster_, test[feats], 6, 1), rtol=1e-6)
    cal = dask_model(client, backend=backend, calibration="isotonic", **params).fit(
        ddf[feats], ddf["y"], group=ddf["g"]
    )
    assert set(cal.calibration_.ratios) == {"ctr", "ctcvr"}
    raw = cal.to_local()
    raw.calibration_ = None
    assert conversion_auc(cal.predict_ctcvr(test[feats]), yt) == pytest.approx(
        conversion_auc(raw.predict_ctcvr(test[feats]), yt), abs=2e-3
    )
