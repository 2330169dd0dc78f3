"""DaskCTCVRClassifier: fits on a LocalCluster (2 process workers x 1 thread) against CTCVRClassifier."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")
pytest.importorskip("lightgbm.dask")

from gbdt_pwiser import CTCVRClassifier  # noqa: E402
from _dask_helpers import two_worker_client  # noqa: E402
from gbdt_pwiser.dask import DaskCTCVRClassifier, partition_by_group  # noqa: E402
from gbdt_pwiser.datasets import make_ad_log  # noqa: E402
from gbdt_pwiser.metrics import conversion_auc  # noqa: E402

PARAMS = {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.2, "n_jobs": 1, "lam": 1.0}


@pytest.fixture(scope="module")
def client():
    with two_worker_client() as c:
        yield c


@pytest.fixture(scope="module")
def log():
    """A simulated log with its groups scattered over the rows, and held-out rows."""
    def frame(n, seed):
        lg = make_ad_log(n, random_state=seed)
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
    model = DaskCTCVRClassifier(backend=backend, cvr_space=cvr_space, client=client, **PARAMS)
    model.fit(ddf[feats], ddf["y"], group=ddf["g"])
    assert model.repartitioned_ and model.n_partitions_ == 4
    local = CTCVRClassifier(backend=backend, cvr_space=cvr_space, **PARAMS).fit(train[feats], train["y"],
                                                                                group=train["g"])
    yt = test["y"].to_numpy()
    auc_d, auc_l = model.score(test[feats], yt), local.score(test[feats], yt)
    # a small log (~300 test conversions): CTCVR AUCs of two different tree sets differ by a few points
    assert auc_d > 0.7 and abs(auc_d - auc_l) < 0.08, (auc_d, auc_l)
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
    pdf = train.assign(click=(train["y"] >= 1).astype(int), conv=(train["y"] == 2).astype(int),
                       w=np.linspace(0.5, 2.0, len(train)))
    ddf = partition_by_group(_ddf(pdf), "g")
    model = DaskCTCVRClassifier(client=client, **PARAMS).fit(ddf[feats], ddf[["click", "conv"]],
                                                              group=ddf["g"], sample_weight=ddf["w"])
    assert not model.repartitioned_  # already whole groups
    assert model.score(test[feats], test["y"]) > 0.7


def test_prepartitioned_and_repartitioned_fits(client, log):
    """Scattered groups are repartitioned exactly as partition_by_group does (same rows per partition)."""
    train, test, feats = log
    ddf = _ddf(train)
    a = DaskCTCVRClassifier(client=client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"])
    pre = partition_by_group(ddf, "g")
    b = DaskCTCVRClassifier(client=client, **PARAMS).fit(pre[feats], pre["y"], group=pre["g"])
    assert a.repartitioned_ and not b.repartitioned_
    pa, pb = a.predict_ctcvr(test[feats]), b.predict_ctcvr(test[feats])
    assert abs(conversion_auc(pa, test["y"]) - conversion_auc(pb, test["y"])) < 0.03


def test_lam_zero_needs_no_group(client, log):
    train, test, feats = log
    ddf = _ddf(train)
    model = DaskCTCVRClassifier(client=client, **{**PARAMS, "lam": 0.0}).fit(ddf[feats], ddf["y"])
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
        part["cat"] = pd.Series([f"c{v}" for v in rng.integers(0, 100, len(part)) + 100 * (k % 2)],
                                index=part.index, dtype="category")
        part.to_parquet(folder / f"part-{k}.parquet", index=False)
    return folder, feats


def test_the_readme_call_on_parquet_files(client, log, parquet_folder):
    """fit(ddf[features], ddf["y"], group=ddf["g"]) on dd.read_parquet of small files: dask's optimiser
    merges their partitions differently for different column selections, and the fit must not care."""
    _, test, _ = log
    folder, feats = parquet_folder
    ddf = dd.read_parquet(folder)
    assert ddf[feats].npartitions == ddf["y"].npartitions == 8
    model = DaskCTCVRClassifier(client=client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"])
    assert model.score(test[feats], test["y"]) > 0.7
    # the same data as dask Arrays, one row chunk per partition (y, group and weights)
    pdf = ddf.persist()
    arrays = {c: pdf[c].to_dask_array(lengths=True) for c in ("y", "g")}
    weighted = DaskCTCVRClassifier(client=client, **PARAMS).fit(
        pdf[feats], arrays["y"], group=arrays["g"], sample_weight=arrays["y"].astype(np.float64) * 0 + 1.0)
    np.testing.assert_array_equal(weighted.predict_proba(test[feats]), model.predict_proba(test[feats]))
    two_columns = dd.concat([pdf["y"] >= 1, pdf["y"] == 2], axis=1).astype(np.int8).to_dask_array(lengths=True)
    again = DaskCTCVRClassifier(client=client, **PARAMS).fit(pdf[feats], two_columns, group=arrays["g"])
    np.testing.assert_array_equal(again.predict_proba(test[feats]), model.predict_proba(test[feats]))
    with pytest.raises(ValueError, match="y has 3 partitions but X has 8"):
        model.fit(pdf[feats], arrays["y"].rechunk(len(pdf) // 3 + 1), group=arrays["g"])


def test_unknown_categories_are_made_known(client, log, parquet_folder):
    """dd.read_parquet of pandas categoricals leaves the categories unknown (each partition has its own)."""
    _, test, _ = log
    folder, feats = parquet_folder
    ddf = dd.read_parquet(folder)
    assert not ddf["cat"].cat.known
    cols = feats + ["cat"]
    model = DaskCTCVRClassifier(client=client, **PARAMS).fit(ddf[cols], ddf["y"], group=ddf["g"])
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
    model = DaskCTCVRClassifier(client=client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"])
    assert model.repartitioned_ and model.score(test[feats], test["y"]) > 0.7
    # whole groups in one partition and an empty one: LightGBM fails on a worker holding only empty data
    whole = partition_by_group(_ddf(train), "g", npartitions=1)
    gappy = dd.concat([dd.from_pandas(train.iloc[:0], npartitions=1), whole])
    assert gappy.map_partitions(len).compute().tolist()[0] == 0
    for backend in ("xgboost", "lightgbm"):
        again = DaskCTCVRClassifier(client=client, backend=backend, **PARAMS).fit(gappy[feats], gappy["y"],
                                                                                 group=gappy["g"])
        assert not again.repartitioned_ and again.n_partitions_ == 1  # the empty one dropped
        assert again.score(test[feats], test["y"]) > 0.7


def test_bad_inputs(client, log):
    train, _, feats = log
    ddf = _ddf(train)
    est = DaskCTCVRClassifier(client=client, **PARAMS)
    with pytest.raises(ValueError, match="group is required when lam > 0"):
        est.fit(ddf[feats], ddf["y"])
    with pytest.raises(ValueError, match="group is required when lam > 0"):
        est.fit(ddf[feats], ddf["y"], group="all")
    with pytest.raises(ValueError, match="partitioned alike"):
        est.fit(ddf[feats], _ddf(train, 3)["y"], group=ddf["g"])
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
    # early stopping: XGBoost only (tests/test_dask_early_stopping.py), and only with an eval set
    with pytest.raises(NotImplementedError, match="backend='lightgbm'"):
        DaskCTCVRClassifier(client=client, backend="lightgbm").fit(
            ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(train[feats], train["y"])])
    with pytest.raises(ValueError, match="needs an eval_set"):
        DaskCTCVRClassifier(client=client, early_stopping_rounds=3).fit(ddf[feats], ddf["y"], group=ddf["g"])
    with pytest.raises(ValueError):
        DaskCTCVRClassifier(client=client, lam=-1.0).fit(ddf[feats], ddf["y"], group=ddf["g"])


# The Dask estimator trains the chained model only: the shared two-output
# booster (``structure``, ``ctcvr_weight_ctr``) is single-process (see Notes).
SINGLE_PROCESS_ONLY = {"structure", "ctcvr_weight_ctr"}


def test_get_params_match_the_local_estimator():
    local = set(CTCVRClassifier().get_params())
    assert SINGLE_PROCESS_ONLY <= local
    assert set(DaskCTCVRClassifier().get_params()) == (local - SINGLE_PROCESS_ONLY) | {"client"}
