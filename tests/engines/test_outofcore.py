"""CTCVRClassifier.fit(ParquetLog(...)): the out-of-core chained fit predicts like the in-memory fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("pyarrow")

from gbdt_pwiser import CTCVRClassifier, ParquetLog
from gbdt_pwiser.datasets import make_ad_log
from gbdt_pwiser.exceptions import ColumnError

FEATS = [f"f{i}" for i in range(8)]
PARAMS = dict(n_estimators=8, max_depth=3, learning_rate=0.3, lam=2.0, n_jobs=1, random_state=3)


def write_log(folder, n_requests=200, n_shards=3, seed=0, weighted=False):
    """A simulated log written as ``n_shards`` Parquet files of whole, sorted requests.

    Returns the rows as one frame in the order the shards are read (file order).
    """
    log = make_ad_log(n_requests, random_state=seed, ctr=0.1, cvr=0.2)
    X = log.X.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(np.float64)
    df = X.iloc[:, :8].copy()
    df.columns = FEATS
    y = np.asarray(log.y)
    df["click"] = (y >= 1).astype(np.int8)
    df["conversion"] = (y == 2).astype(np.int8)
    df["req"] = np.asarray(log.group)
    rng = np.random.default_rng(seed)
    if weighted:
        df["w"] = rng.uniform(0.5, 2.0, len(df))
    groups = df["req"].unique()
    shard_of = pd.Series(rng.integers(0, n_shards, groups.size), index=groups)
    folder.mkdir(exist_ok=True)
    parts = []
    for s in range(n_shards):
        part = df[df["req"].map(shard_of) == s].sort_values("req", kind="stable")
        part.to_parquet(folder / f"part-{s:03d}.parquet", index=False)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def in_memory_fit(full, weighted, **params):
    return CTCVRClassifier(**params).fit(
        full[FEATS], full[["click", "conversion"]], group=full["req"], sample_weight=full["w"] if weighted else None
    )


@pytest.mark.parametrize("cvr_space", ["clicked", "entire"])
@pytest.mark.parametrize("weighted", [False, True])
def test_out_of_core_fit_predicts_like_in_memory(tmp_path, cvr_space, weighted):
    full = write_log(tmp_path / "log", weighted=weighted)
    log = ParquetLog(
        tmp_path / "log",
        label=["click", "conversion"],
        group="req",
        weight="w" if weighted else None,
        cache_dir=tmp_path,
    )
    ooc = CTCVRClassifier(cvr_space=cvr_space, **PARAMS).fit(log)
    mem = in_memory_fit(full, weighted, cvr_space=cvr_space, **PARAMS)
    assert ooc.feature_names_in_.tolist() == FEATS and ooc.n_features_in_ == 8
    assert ooc.n_rounds_ctr_ == mem.n_rounds_ctr_ == 8 and ooc.n_rounds_cvr_ == mem.n_rounds_cvr_
    X = full[FEATS]
    # On a log this small every shard's quantile summary is exact, so XGBoost's merged external-memory
    # sketch equals the in-memory one: same cuts, same trees, predictions equal to the last bit. (With
    # large shards each shard's summary is pruned before the merge and the cuts differ slightly;
    # benchmarks/bench_external.py compares the AUCs at scale.)
    for method in ("predict_ctr", "predict_cvr", "predict_ctcvr"):
        np.testing.assert_array_equal(getattr(ooc, method)(X), getattr(mem, method)(X), err_msg=method)
    assert ooc.ctr_init_margin_ == mem.ctr_init_margin_ and ooc.cvr_init_margin_ == mem.cvr_init_margin_
    assert not list(tmp_path.glob("gbdt-pwiser-extmem-*"))  # the page cache is removed after the fit


def test_out_of_core_early_stopping_and_save_load(tmp_path):
    full = write_log(tmp_path / "log", n_requests=240, n_shards=4, seed=1)
    valid = write_log(tmp_path / "valid", n_requests=120, n_shards=1, seed=2)
    ev = [(valid[FEATS], valid[["click", "conversion"]], valid["req"])]
    params = {**PARAMS, "n_estimators": 40, "early_stopping_rounds": 3}
    ooc = CTCVRClassifier(**params).fit(
        ParquetLog(str(tmp_path / "log" / "*.parquet"), label=["click", "conversion"], group="req"), eval_set=ev
    )
    mem = CTCVRClassifier(**params).fit(full[FEATS], full[["click", "conversion"]], group=full["req"], eval_set=ev)
    assert ooc.best_iteration_ctr_ == mem.best_iteration_ctr_ is not None
    assert ooc.best_iteration_cvr_ == mem.best_iteration_cvr_
    assert ooc.evals_result_ == mem.evals_result_
    np.testing.assert_array_equal(ooc.predict_proba(valid[FEATS]), mem.predict_proba(valid[FEATS]))
    ooc.save_model(tmp_path / "m.zip")
    again = CTCVRClassifier.load_model(tmp_path / "m.zip")
    np.testing.assert_array_equal(again.predict_proba(valid[FEATS]), ooc.predict_proba(valid[FEATS]))


def test_funnel_label_column_and_feature_subset(tmp_path):
    full = write_log(tmp_path / "log", seed=4)
    full["y"] = full["click"] + full["conversion"]
    for f in sorted((tmp_path / "log").glob("*.parquet")):
        part = pd.read_parquet(f)
        part["y"] = part["click"] + part["conversion"]
        part.drop(columns=["click", "conversion"]).to_parquet(f, index=False)
    log = ParquetLog(tmp_path / "log", label="y", group="req", features=FEATS[:5])
    ooc = CTCVRClassifier(**PARAMS).fit(log)
    mem = CTCVRClassifier(**PARAMS).fit(full[FEATS[:5]], full["y"], group=full["req"])
    np.testing.assert_array_equal(ooc.predict_ctcvr(full[FEATS[:5]]), mem.predict_ctcvr(full[FEATS[:5]]))
    with pytest.raises(ValueError, match="feature names"):
        ooc.predict_ctcvr(full[FEATS])  # predict checks the fitted columns


def _log(folder, **kw):
    return ParquetLog(folder, **{"label": ["click", "conversion"], "group": "req", **kw})


def _text_f0(full, tmp_path):
    text = tmp_path / "text_f0"
    text.mkdir()
    full.assign(f0=full["f0"].round().astype(int).astype(str)).to_parquet(text / "a.parquet", index=False)
    return text


def test_bad_logs(tmp_path):
    full = write_log(tmp_path / "log", n_shards=2)
    est = CTCVRClassifier(**PARAMS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no Parquet files"):
        est.fit(_log(tmp_path / "empty"))
    with pytest.raises(ValueError, match=r"part-000.parquet' has no column 'clicks'"):
        est.fit(ParquetLog(tmp_path / "log", label=["clicks", "conversion"], group="req"))
    with pytest.raises(ValueError, match="no column 'weight'"):
        est.fit(_log(tmp_path / "log", weight="weight"))
    # bad labels and weights name the shard
    bad = tmp_path / "bad"
    bad.mkdir()
    f = full.assign(w=1.0)
    f.loc[3, "conversion"] = 1
    f.loc[3, "click"] = 0
    f.to_parquet(bad / "a.parquet", index=False)
    with pytest.raises(ValueError, match=r"a.parquet': conversion without a click at 1 row\(s\)"):
        est.fit(_log(bad))
    # a null in a nullable integer label column: the shard, the column and the row
    null = tmp_path / "null"
    null.mkdir()
    f = full.assign(click=full["click"].astype("Int8"))
    f.loc[3, "click"] = pd.NA
    f.to_parquet(null / "a.parquet", index=False)
    with pytest.raises(ValueError, match=r"a.parquet': column 'click' has 1 missing value\(s\) \(first at row 3\)"):
        est.fit(_log(null))
    f = full.assign(y=(full["click"] + full["conversion"]).astype("Int8"))
    f.loc[4, "y"] = pd.NA
    f.drop(columns=["click", "conversion"]).to_parquet(null / "a.parquet", index=False)
    with pytest.raises(ValueError, match=r"a.parquet': column 'y' has 1 missing value\(s\) \(first at row 4"):
        est.fit(ParquetLog(null, label="y", group="req"))
    neg = tmp_path / "neg"
    neg.mkdir()
    full.assign(w=-1.0).to_parquet(neg / "a.parquet", index=False)
    with pytest.raises(ValueError, match=r"a\.parquet': weight column 'w' must be non-negative"):
        est.fit(_log(neg, weight="w"))
    dates = tmp_path / "dates"
    dates.mkdir()
    full.assign(f0=pd.Timestamp("2026-01-01")).to_parquet(dates / "a.parquet")
    with pytest.raises(ColumnError, match=r"a\.parquet': feature column 'f0' has type timestamp.*neither numeric nor"):
        est.fit(_log(dates, features=FEATS))
    text_f0 = r"a\.parquet': feature column 'f0' has type \w*string.*list it in categorical="
    with pytest.raises(ColumnError, match=text_f0):
        est.fit(_log(_text_f0(full, tmp_path), features=FEATS, categorical=["f1"]))
    # shards with no column besides the label and group columns (default features): no XGBoost crash
    nofeat = tmp_path / "nofeat"
    nofeat.mkdir()
    full[["click", "conversion", "req"]].to_parquet(nofeat / "a.parquet", index=False)
    with pytest.raises(ValueError, match=r"a\.parquet' has no feature column"):
        est.fit(_log(nofeat))
    # a damaged shard names the file, wherever it is read first
    req, mid = full["req"].to_numpy(), len(full) // 2
    half = mid + int(np.flatnonzero(req[mid:] != req[mid])[0])  # whole groups in each half
    for name, edit in (("garbage", lambda b: b"not parquet" * 50), ("truncated", lambda b: b[: len(b) // 2])):
        broken = tmp_path / name
        broken.mkdir()
        for k in (0, 1):
            full.iloc[k * half : (k + 1) * half].to_parquet(broken / f"part-{k}.parquet", index=False)
        for k in (1, 0):
            path = broken / f"part-{k}.parquet"
            path.write_bytes(edit(path.read_bytes()))
            with pytest.raises(ValueError, match=f"part-{k}.parquet' is not a readable Parquet file"):
                est.fit(_log(broken))
    # columns: one in two roles, a name twice in a shard or in features, a string weight, an infinite feature
    with pytest.raises(ValueError, match="label must name the funnel-label column"):
        est.fit(ParquetLog(tmp_path / "log", label=3, group="req"))
    with pytest.raises(ValueError, match=r"columns \['req'\] are given more than one role"):
        est.fit(_log(tmp_path / "log", weight="req"))
    with pytest.raises(ValueError, match=r"features lists columns \['f0'\] more than once"):
        est.fit(_log(tmp_path / "log", features=["f0", "f1", "f0"]))
    import pyarrow as pa
    import pyarrow.parquet as pq

    twice = tmp_path / "twice"
    twice.mkdir()
    table = pa.Table.from_pandas(full, preserve_index=False)
    pq.write_table(table.append_column("f0", table.column("f1")), twice / "a.parquet")
    with pytest.raises(ValueError, match=r"a\.parquet' has 2 columns named 'f0'"):
        est.fit(_log(twice))
    text = tmp_path / "text"
    text.mkdir()
    full.assign(w="1.0").to_parquet(text / "a.parquet", index=False)
    with pytest.raises(TypeError, match=r"a\.parquet': weight column 'w' has type"):
        est.fit(_log(text, weight="w", features=FEATS))
    inf = tmp_path / "inf"
    inf.mkdir()
    full.assign(f2=np.where(np.arange(len(full)) == 5, np.inf, full["f2"])).to_parquet(inf / "a.parquet", index=False)
    with pytest.raises(ValueError, match=r"a.parquet': column 'f2' contains 1 infinite value\(s\) \(first at row 5"):
        est.fit(_log(inf))
    noclick = tmp_path / "noclick"
    noclick.mkdir()
    full.assign(click=0, conversion=0).to_parquet(noclick / "a.parquet", index=False)
    with pytest.raises(ValueError, match="no clicks"):
        est.fit(_log(noclick))


def test_unsupported_settings(tmp_path):
    full = write_log(tmp_path / "log", n_shards=2)
    log = _log(tmp_path / "log")
    with pytest.raises(ValueError, match="LightGBM has no external-memory"):
        CTCVRClassifier(backend="lightgbm", **PARAMS).fit(log)
    with pytest.raises(ValueError, match='structure="shared" cannot'):
        CTCVRClassifier(structure="shared", **PARAMS).fit(log)
    with pytest.raises(ValueError, match="come from its columns"):
        CTCVRClassifier(**PARAMS).fit(log, full[["click", "conversion"]])
    with pytest.raises(ValueError, match="come from its columns"):
        CTCVRClassifier(**PARAMS).fit(log, group=full["req"])
    with pytest.raises(ValueError, match="requires y"):  # the in-memory interface is unchanged
        CTCVRClassifier(**PARAMS).fit(full[FEATS])


def test_out_of_core_fit_is_deterministic_and_skips_empty_shards(tmp_path):
    full = write_log(tmp_path / "log", n_shards=3, seed=5)
    full.iloc[:0].to_parquet(tmp_path / "log" / "part-000a.parquet", index=False)  # an empty shard
    log = _log(tmp_path / "log")
    a = CTCVRClassifier(**{**PARAMS, "n_jobs": 1}).fit(log)
    b = CTCVRClassifier(**{**PARAMS, "n_jobs": 2}).fit(log)
    np.testing.assert_array_equal(a.predict_ctcvr(full[FEATS]), b.predict_ctcvr(full[FEATS]))
    state = log.read_state()
    assert len(state.shards) == 3 and state.y.size == len(full) and state.sizes.sum() == len(full)
    np.testing.assert_array_equal(state.y, (full["click"] + full["conversion"]).to_numpy())


def _scatter(full, folder, n_shards=3, seed=0):
    """The rows of ``full`` in random order over ``n_shards`` files: groups scattered across and within shards."""
    folder.mkdir()
    rows = full.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    for k, idx in enumerate(np.array_split(np.arange(len(rows)), n_shards)):
        rows.iloc[idx].to_parquet(folder / f"part-{k}.parquet", index=False)
    return rows


@pytest.mark.parametrize("weighted", [False, True])
def test_scattered_groups_fit_like_in_memory(tmp_path, weighted):
    """Groups scattered over the shards: the objective pairs rows wherever they are (per-row group codes)."""
    full = write_log(tmp_path / "log", weighted=weighted)
    rows = _scatter(full, tmp_path / "scattered")
    assert rows.groupby("req").ngroups > 0 and not rows["req"].is_monotonic_increasing
    log = _log(tmp_path / "scattered", weight="w" if weighted else None, cache_dir=tmp_path)
    state = log.read_state()
    assert not state.whole_groups and state.sizes is None and state.codes.shape == (len(rows),)
    np.testing.assert_array_equal(pd.factorize(state.codes)[0], pd.factorize(rows["req"])[0])
    assert _log(tmp_path / "log").read_state().whole_groups  # whole groups: the cheap layout (sizes)
    ooc = CTCVRClassifier(**PARAMS).fit(log)
    mem = in_memory_fit(full, weighted, **PARAMS)
    X = full[FEATS]
    # the same gradients per row; XGBoost sums them in another row order, so equal to float rounding
    for method in ("predict_ctr", "predict_cvr", "predict_ctcvr"):
        np.testing.assert_allclose(getattr(ooc, method)(X), getattr(mem, method)(X), rtol=1e-5, err_msg=method)
    # the pair term sees the scattered groups: ignoring them (one group per row) gives another model
    alone = CTCVRClassifier(**PARAMS).fit(
        rows[FEATS],
        rows[["click", "conversion"]],
        group=np.arange(len(rows)),
        sample_weight=rows["w"] if weighted else None,
    )
    assert np.max(np.abs(alone.predict_ctr(X) - mem.predict_ctr(X))) > 1e-3


def test_categorical_columns_out_of_core_fit_like_load_log_in_memory(tmp_path):
    """Text and integer-code categoricals: the categories of all shards, the same model as load_log + fit."""
    import warnings

    from gbdt_pwiser.datasets import InferredCategoricalWarning, load_log

    full = write_log(tmp_path / "plain", n_shards=1)
    full["city"] = np.array(["paris", "lyon", "nice", "lille"])[full["f1"].round().astype(int) % 4]
    full["shop"] = full["f2"].round().astype(np.int64) % 7  # integer ids, categorical only when listed
    full = full.drop(columns=["f1", "f2"])
    _scatter(full, tmp_path / "log")
    feats = ["f0", "city", "shop", "f3"]
    kw = dict(click="click", conversion="conversion", group="req", features=feats)
    log = ParquetLog(tmp_path / "log", categorical=["city", "shop"], **kw)
    ooc = CTCVRClassifier(**PARAMS).fit(log)
    mem_log = load_log(tmp_path / "log", categorical=["city", "shop"], **kw)
    assert [str(t) for t in mem_log.X.dtypes] == ["float32", "category", "category", "float32"]
    mem = CTCVRClassifier(**PARAMS).fit(mem_log.X, mem_log.y, group=mem_log.group)
    assert list(ooc.categories_) == ["city", "shop"]
    assert ooc.categories_["city"].tolist() == ["lille", "lyon", "nice", "paris"]
    np.testing.assert_allclose(ooc.predict_ctcvr(mem_log.X), mem.predict_ctcvr(mem_log.X), rtol=1e-5)
    # inferred: the text column (reported), the integer one numeric
    with pytest.warns(InferredCategoricalWarning, match=r"\['city'\] read as categorical") as seen:
        inferred = CTCVRClassifier(**PARAMS).fit(ParquetLog(tmp_path / "log", **kw))
    assert [w.message.columns for w in seen if w.category is InferredCategoricalWarning] == [["city"]]
    assert list(inferred.categories_) == ["city"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", InferredCategoricalWarning)  # an explicit list: no warning
        CTCVRClassifier(**{**PARAMS, "n_estimators": 2}).fit(log)


@pytest.mark.parametrize(
    "kw, error, match",
    [
        (dict(label="y", click="click"), ValueError, "either label"),
        (dict(click="click"), ValueError, "conversion is required"),
        (dict(click="click", conversion="conversion", categorical=["req"]), ValueError, "not features"),
        (
            dict(click="click", conversion="conversion", categorical=["F0"]),
            ValueError,
            "no column 'F0'; did you mean 'f0'",
        ),
        (dict(click="click", conversion="conversion", categorical="f0"), None, None),
        (dict(click="click", conversion="conversion", categorical=[3]), TypeError, "categorical must be a list"),
        (dict(click=1, conversion="conversion"), TypeError, "click must name a column"),
        (dict(click="clicks", conversion="conversion"), ValueError, "no column 'clicks'; did you mean 'click'"),
    ],
)
def test_parquet_log_column_arguments(tmp_path, kw, error, match):
    write_log(tmp_path / "log", n_shards=2)
    log = ParquetLog(tmp_path / "log", group="req", **kw)
    if error is None:
        assert log.spec.categorical == ("f0",) and log.columns() == FEATS
        return
    with pytest.raises(error, match=match):
        CTCVRClassifier(**PARAMS).fit(log)
