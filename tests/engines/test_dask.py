"""PWiseR on Dask: exact first-round gradients across workers, layout checks, end-to-end training.

One LocalCluster (2 process workers x 1 thread) serves the whole module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
xgb = pytest.importorskip("xgboost")
pytest.importorskip("xgboost.dask")
lgb = pytest.importorskip("lightgbm")
pytest.importorskip("lightgbm.dask")

import _dask_helpers as H  # noqa: E402
from reference import assert_handed_to_booster  # noqa: E402

from gbdt_pwiser import EntireSpaceCVRObjective, PWiseRObjective  # noqa: E402
from gbdt_pwiser.dask import (  # noqa: E402
    EntireSpaceLabelObjective,
    GlobalPWiseRObjective,
    GroupLayoutError,
    entire_space_label,
    group_statistics,
    lightgbm_fit_kwargs,
    partition_by_group,
    xgboost_dmatrix,
    xgboost_params,
)
from gbdt_pwiser.datasets import make_ad_log  # noqa: E402
from gbdt_pwiser.metrics import auc  # noqa: E402

FEATURES = [f"f{i}" for i in range(6)]


def _frame(n_requests=120, seed=0, weighted=True):
    log = make_ad_log(n_requests, random_state=seed)
    X = log.X.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(np.float64)
    rng = np.random.default_rng(seed)
    n = len(X)
    df = pd.DataFrame(X.to_numpy()[:, : len(FEATURES)], columns=FEATURES)
    df["y"] = np.asarray(log.y, dtype=np.int8)
    df["group"] = np.asarray(log.group)
    # float32-exact weights (both boosters store weights as float32) and margins that
    # identify each row (distinct multiples of 1/256, exact in float32)
    df["w"] = rng.uniform(0.5, 2.0, n).astype(np.float32).astype(np.float64) if weighted else 1.0
    df["z"] = (rng.permutation(n) - n / 2) / 256.0
    return df.iloc[rng.permutation(n)].reset_index(drop=True)  # groups scattered


def _scattered(df, npartitions=4):
    return dd.from_pandas(df, npartitions=npartitions, sort=False)


def _pinned(client, ddf):
    """The partitions of ddf placed alternately on the two workers.

    The scheduler is free to put every partition on one worker (it does on a busy
    machine), and then nothing here would cross a worker boundary.
    """
    workers = sorted(client.scheduler_info()["workers"])
    assert len(workers) == 2 and ddf.npartitions >= 2
    parts = [
        client.persist(ddf.partitions[i], workers=[workers[i % 2]], allow_other_workers=False)
        for i in range(ddf.npartitions)
    ]
    distributed.wait(parts)
    for i, part in enumerate(parts):
        where = {w for holders in client.who_has(part).values() for w in holders}
        assert where == {workers[i % 2]}, where
    return dd.concat(parts)


def _collect(client, df):
    """First-round (z, grad, hess) from every worker, put back in the row order of df.

    The margins identify the rows (their first column for a two-output booster).
    """
    recs = [r for per_worker in client.run(H.take_record).values() for r in per_worker]
    assert len(recs) == 2, "each of the two workers must have run the objective once in round 0"
    z = np.concatenate([r[0] for r in recs])
    g = np.concatenate([r[1] for r in recs])
    h = np.concatenate([r[2] for r in recs])
    pos = pd.Series(np.arange(len(df)), index=df["z"].to_numpy())
    rows = pos.loc[z if z.ndim == 1 else z[:, 0]].to_numpy()
    assert np.array_equal(np.sort(rows), np.arange(len(df))), "every row exactly once"
    G = np.empty((len(df), *g.shape[1:]), g.dtype)
    Hh = np.empty((len(df), *h.shape[1:]), h.dtype)
    G[rows] = g
    Hh[rows] = h
    return G, Hh


def _xgb_first_round(client, df, obj, weighted):
    ddf = _pinned(client, partition_by_group(_scattered(df), "group"))
    w = ddf["w"] if weighted else None
    stats = group_statistics(ddf["y"], ddf["group"], w, X=ddf[FEATURES], check_groups=False)
    obj = type(obj)(
        **{k: getattr(obj, k) for k in PWiseRObjective._param_names},
        **({} if type(obj) is H.RecordingLocal else stats.normalisers()),
    )
    dtrain = xgboost_dmatrix(
        client, ddf[FEATURES], ddf["y"], ddf["group"], w, stats=stats, base_margin=ddf["z"], check_groups=False
    )
    xgb.dask.train(
        client,
        xgboost_params(stats, {"tree_method": "hist", "max_depth": 2, "nthread": 1}),
        dtrain,
        num_boost_round=1,
        obj=obj,
    )
    return _collect(client, df)


def _reference(df, weighted, **params):
    return PWiseRObjective(**params).grad_hess(
        df["z"].to_numpy(),
        df["y"].to_numpy(),
        group=df["group"].to_numpy(),
        weight=df["w"].to_numpy() if weighted else None,
    )


STATS0 = {"total_weight": 1.0, "pair_weight_c": 0.0, "pair_weight_n": 0.0}


@pytest.mark.parametrize(
    "pair_loss,weighted", [("squared_hinge", True), ("logistic", True), ("squared_hinge", False), ("logistic", False)]
)
def test_xgboost_first_round_gradients_exact(client, pair_loss, weighted):
    df = _frame(weighted=weighted)
    params = {"lam": 2.0, "pair_loss": pair_loss, "margin_click_only": 0.1, "margin_no_click": 0.3}
    g, h = _xgb_first_round(client, df, H.RecordingGlobal(**params, **STATS0), weighted)
    g0, h0 = _reference(df, weighted, **params)
    assert_handed_to_booster(g, g0, rtol=1e-9)
    assert_handed_to_booster(h, h0, rtol=1e-9)


def test_shared_booster_first_round_gradients_exact(client):
    """The shared two-output objective on xgboost.dask (num_target=2): each worker's (n, 2) gradient equals
    single-process, row for row. (Weighted: the groups travel as group-start flags; XGBoost's Dask
    interface cannot sort a 2-column base_margin by qid, which this test needs to identify the rows; the
    estimator starts from base_score and is tested unweighted in test_dask_estimator.py.)"""
    from gbdt_pwiser.objectives import SharedCTCVRObjective

    weighted = True
    df = _frame(weighted=weighted)
    df["u"] = df["z"][::-1].to_numpy() / 2.0
    ddf = _pinned(client, partition_by_group(_scattered(df), "group"))
    w = ddf["w"] if weighted else None
    stats = group_statistics(ddf["y"], ddf["group"], w, check_groups=False)
    params = {"lam": 2.0, "margin_click_only": 0.1, "margin_no_click": 0.3, "ctcvr_weight_ctr": 0.5}
    obj = H.RecordingGlobalShared(**params, **stats.normalisers())
    dtrain = xgboost_dmatrix(
        client, ddf[FEATURES], ddf["y"], ddf["group"], w, stats=stats, base_margin=ddf[["z", "u"]], check_groups=False
    )
    xgb.dask.train(
        client,
        {
            "tree_method": "hist",
            "max_depth": 2,
            "nthread": 1,
            "num_target": 2,
            "multi_strategy": "multi_output_tree",
            "disable_default_eval_metric": 1,
        },
        dtrain,
        num_boost_round=1,
        obj=obj,
    )
    g, h = _collect(client, df)
    g0, h0 = SharedCTCVRObjective(**params).grad_hess(
        df[["z", "u"]].to_numpy(),
        df["y"].to_numpy(),
        group=df["group"].to_numpy(),
        weight=df["w"].to_numpy() if weighted else None,
    )
    assert_handed_to_booster(g, g0, rtol=1e-9)
    assert_handed_to_booster(h, h0, rtol=1e-9)


def test_per_worker_normalisers_would_fail(client):
    """The check above can fail: with each worker's own normalisers the gradients differ."""
    df = _frame()
    params = {"lam": 2.0, "margin_click_only": 0.1, "margin_no_click": 0.3}
    g, _ = _xgb_first_round(client, df, H.RecordingLocal(**params), True)
    g0, _ = _reference(df, True, **params)
    assert not np.allclose(g, g0, rtol=1e-9, atol=0)
    assert np.max(np.abs(g - g0) / np.abs(g0)) > 1e-3


def test_lightgbm_first_round_gradients_exact(client):
    df = _frame()
    params = {"lam": 2.0, "pair_loss": "logistic", "margin_click_only": 0.1, "margin_no_click": 0.3}
    ddf = _pinned(client, partition_by_group(_scattered(df), "group"))
    stats = group_statistics(ddf["y"], ddf["group"], ddf["w"], X=ddf[FEATURES], check_groups=False)
    obj = H.RecordingGlobal(**params, **stats.normalisers())
    kw = lightgbm_fit_kwargs(ddf[FEATURES], ddf["y"], ddf["group"], ddf["w"], stats=stats)
    kw["init_score"] = ddf["z"]
    model = lgb.dask.DaskLGBMRanker(objective=obj, n_estimators=1, num_leaves=4, verbose=-1, client=client)
    model.fit(**kw)
    g, h = _collect(client, df)
    g0, h0 = _reference(df, True, **params)
    assert_handed_to_booster(g, g0, rtol=1e-9)
    assert_handed_to_booster(h, h0, rtol=1e-9)


def test_sampled_mode_is_a_function_of_each_workers_rows(client):
    """Sampled pairs: each worker's draws are fixed by its own rows and their order (so a fit is
    reproducible for a given assignment of partitions to workers, not across assignments)."""
    df = _frame()
    params = {"lam": 1.0, "pairs": 2, "random_state": 7}
    ddf = _pinned(client, partition_by_group(_scattered(df), "group"))
    stats = group_statistics(ddf["y"], ddf["group"], ddf["w"], X=ddf[FEATURES], check_groups=False)
    dtrain = xgboost_dmatrix(
        client, ddf[FEATURES], ddf["y"], ddf["group"], ddf["w"], stats=stats, base_margin=ddf["z"], check_groups=False
    )
    xgb.dask.train(
        client,
        xgboost_params(stats, {"tree_method": "hist", "max_depth": 2, "nthread": 1}),
        dtrain,
        num_boost_round=1,
        obj=H.RecordingGlobal(**params, **stats.normalisers()),
    )
    recs = [r for per_worker in client.run(H.take_record).values() for r in per_worker]
    assert len(recs) == 2
    pos = pd.Series(np.arange(len(df)), index=df["z"].to_numpy())
    local = GlobalPWiseRObjective(**params, **stats.normalisers())
    for z, g, _ in recs:
        rows = df.iloc[pos.loc[z].to_numpy()]
        g1, _ = local.grad_hess(z, rows["y"].to_numpy(), group=rows["group"].to_numpy(), weight=rows["w"].to_numpy())
        assert_handed_to_booster(g, g1)
    g_all, _ = _reference(df, True, lam=1.0)
    g_s = np.concatenate([r[1] for r in recs])
    rows = pos.loc[np.concatenate([r[0] for r in recs])].to_numpy()
    assert np.all(np.isfinite(g_s)) and not np.allclose(g_s, g_all[rows])
    assert np.corrcoef(g_s, g_all[rows])[0, 1] > 0.3


@pytest.mark.parametrize("booster", ["xgboost", "lightgbm"])
def test_entire_space_first_round_gradients(client, booster):
    """pCTR travels in each row's label: the workers' gradients are the single-process ones."""
    df = _frame()
    rng = np.random.default_rng(3)
    df["pctr"] = rng.uniform(0.01, 0.9, len(df)).astype(np.float32).astype(np.float64)
    df["esl"] = entire_space_label(df["y"], df["pctr"])
    ddf = _pinned(client, _scattered(df))
    if booster == "xgboost":
        dtrain = xgb.dask.DaskQuantileDMatrix(
            client, ddf[FEATURES], label=ddf["esl"], weight=ddf["w"], base_margin=ddf["z"]
        )
        xgb.dask.train(
            client,
            {"tree_method": "hist", "max_depth": 2, "disable_default_eval_metric": 1},
            dtrain,
            num_boost_round=1,
            obj=H.RecordingEntireSpace(),
        )
    else:
        lgb.dask.DaskLGBMRegressor(
            objective=H.RecordingEntireSpace(), n_estimators=1, num_leaves=4, verbose=-1, client=client
        ).fit(ddf[FEATURES], ddf["esl"], sample_weight=ddf["w"], init_score=ddf["z"])
    g, h = _collect(client, df)
    g0, h0 = EntireSpaceCVRObjective().grad_hess(
        df["z"].to_numpy(), df["y"].to_numpy(), ctr_prob=df["pctr"].to_numpy(), weight=df["w"].to_numpy()
    )
    assert_handed_to_booster(g, g0, rtol=1e-9)
    assert_handed_to_booster(h, h0, rtol=1e-9)


# --------------------------------------------------------------------------- partitioning


@pytest.mark.parametrize("seed,nparts", [(0, 3), (1, 5)])
def test_partition_by_group_properties(client, seed, nparts):
    df = _frame(60, seed=seed)
    df["group"] = "r" + df["group"].astype(str)  # string ids
    ddf = partition_by_group(_scattered(df, 4), "group", npartitions=nparts)
    assert ddf.npartitions == nparts
    parts = [p.compute() for p in ddf.partitions]
    seen = {}
    for i, p in enumerate(parts):
        g = p["group"].to_numpy()
        assert np.all(g[1:] >= g[:-1]), "sorted by group inside the partition"
        for gid in np.unique(g):
            assert gid not in seen, f"group {gid} in partitions {seen.get(gid)} and {i}"
            seen[gid] = i
    assert set(seen) == set(df["group"])
    out = pd.concat(parts)
    pd.testing.assert_frame_equal(
        out.sort_values("z").reset_index(drop=True), df.sort_values("z").reset_index(drop=True), check_dtype=False
    )
    # rows of a group keep their original order, whatever the shuffle's delivery order
    for _, rows in out.groupby("group", sort=False):
        np.testing.assert_array_equal(rows.index.to_numpy(), np.sort(rows.index.to_numpy()))
    again = pd.concat(
        [p.compute() for p in partition_by_group(_scattered(df, 4), "group", npartitions=nparts).partitions]
    )
    pd.testing.assert_frame_equal(out, again)


def test_partition_by_group_spreads_64_bit_ids(client):
    """dask hashes numeric shuffle columns as float64; ids beyond 2**53 must still spread over partitions."""
    df = _frame().assign(group=lambda f: f["group"].astype(np.int64) + (2**63 - 10**6))
    out = partition_by_group(dd.from_pandas(df, npartitions=4, sort=False), "group", npartitions=4)
    sizes = out.map_partitions(len).compute().to_numpy()
    assert sizes.sum() == len(df) and sizes.max() < 0.6 * len(df), sizes


def test_statistics_equal_single_process(client):
    df = _frame()
    ddf = partition_by_group(_scattered(df), "group")
    stats = group_statistics(ddf["y"], ddf["group"], ddf["w"])
    from gbdt_pwiser import initial_margin, prepare_data

    ref = prepare_data(df["y"].to_numpy(), df["group"].to_numpy(), df["w"].to_numpy())
    np.testing.assert_allclose(
        [stats.total_weight, stats.pair_weight_c, stats.pair_weight_n],
        [ref.total_weight, ref.pair_weight_c, ref.pair_weight_n],
        rtol=1e-12,
    )
    assert stats.n_rows == len(df) and stats.n_groups == df["group"].nunique()
    assert stats.initial_margin == pytest.approx(initial_margin(df["y"], df["w"]), rel=1e-12)


def test_straddling_groups_rejected(client):
    df = _frame().sort_values("group", kind="stable").reset_index(drop=True)
    ddf = dd.from_pandas(df, npartitions=4, sort=False)  # cuts fall inside groups
    cuts = [len(p) for p in (ddf.partitions[i].compute() for i in range(4))]
    assert any(df["group"].iloc[np.cumsum(cuts)[k] - 1] == df["group"].iloc[np.cumsum(cuts)[k]] for k in range(3)), (
        "the test data must split a group"
    )
    with pytest.raises(GroupLayoutError, match="straddle partitions"):
        group_statistics(ddf["y"], ddf["group"], ddf["w"])
    # partition_by_group repairs it
    fixed = partition_by_group(ddf, "group")
    group_statistics(fixed["y"], fixed["group"], fixed["w"])


def test_straddle_check_is_not_fooled_by_unsorted_contiguous_groups(client):
    """Partitions whose groups are contiguous but unsorted: ends [b, c] and [a, d] look disjoint
    by their first/last ids while group "a" is in both."""
    pdf = pd.DataFrame({"g": ["b", "a", "c", "a", "d"], "y": [2, 0, 1, 0, 2]})
    parts = [pdf.iloc[:3], pdf.iloc[3:]]
    ddf = dd.concat([dd.from_pandas(p, npartitions=1) for p in parts])
    assert ddf.npartitions == 2
    with pytest.raises(GroupLayoutError, match=r"straddle partitions.*'a'"):
        group_statistics(ddf["y"], ddf["g"])
    fine = dd.concat(
        [dd.from_pandas(pdf.iloc[[0, 2]], npartitions=1), dd.from_pandas(pdf.iloc[[1, 3, 4]], npartitions=1)]
    )
    assert group_statistics(fine["y"], fine["g"]).n_groups == 4


def test_unsorted_partition_rejected(client):
    ddf = _scattered(_frame())
    with pytest.raises(GroupLayoutError, match="not contiguous"):
        group_statistics(ddf["y"], ddf["group"])


def test_mismatched_partitions_rejected(client):
    df = _frame()
    ddf = partition_by_group(_scattered(df), "group")
    X3 = ddf[FEATURES].repartition(npartitions=3)
    with pytest.raises(ValueError, match="partitions but y has"):
        group_statistics(ddf["y"], ddf["group"], X=X3)
    # same count, different rows per partition
    Xshift = dd.from_pandas(ddf[FEATURES].compute().reset_index(drop=True), npartitions=4, sort=False)
    with pytest.raises(ValueError, match="partitioned alike"):
        group_statistics(ddf["y"], ddf["group"], X=Xshift)
    with pytest.raises(ValueError, match="partitioned alike"):
        xgboost_dmatrix(client, Xshift, ddf["y"], ddf["group"])


def test_bad_labels_name_the_partition(client):
    df = _frame()
    df.loc[5, "y"] = 3
    ddf = partition_by_group(_scattered(df), "group")
    with pytest.raises(ValueError, match=r"partition \d"):
        group_statistics(ddf["y"], ddf["group"])


# --------------------------------------------------------------------------- training end to end


def _auc_setup(n_requests=300):
    df = _frame(n_requests, seed=5)
    ddf = partition_by_group(_scattered(df), "group")
    return df, ddf


def test_xgboost_dask_train_end_to_end(client):
    _, ddf = _auc_setup()
    stats = group_statistics(ddf["y"], ddf["group"], ddf["w"], X=ddf[FEATURES], check_groups=False)
    obj = GlobalPWiseRObjective.from_stats(PWiseRObjective(lam=1.0), stats)
    dtrain = xgboost_dmatrix(client, ddf[FEATURES], ddf["y"], ddf["group"], ddf["w"], stats=stats)
    out = xgb.dask.train(
        client,
        xgboost_params(stats, {"tree_method": "hist", "max_depth": 4, "eta": 0.2}),
        dtrain,
        num_boost_round=20,
        obj=obj,
    )
    margin = xgb.dask.predict(client, out["booster"], ddf[FEATURES], output_margin=True).compute()
    y = ddf["y"].compute().to_numpy()
    assert auc(y >= 1, margin) > 0.65
    assert auc(y[y >= 1] == 2, margin[y >= 1]) > 0.55


def test_lightgbm_dask_end_to_end(client):
    _, ddf = _auc_setup()
    stats = group_statistics(ddf["y"], ddf["group"], ddf["w"], X=ddf[FEATURES], check_groups=False)
    obj = GlobalPWiseRObjective.from_stats(PWiseRObjective(lam=1.0), stats)
    model = lgb.dask.DaskLGBMRanker(
        objective=obj, n_estimators=20, num_leaves=15, learning_rate=0.2, verbose=-1, client=client
    )
    model.fit(**lightgbm_fit_kwargs(ddf[FEATURES], ddf["y"], ddf["group"], ddf["w"], stats=stats))
    margin = model.predict(ddf[FEATURES], raw_score=True).compute() + stats.initial_margin
    y = ddf["y"].compute().to_numpy()
    assert auc(y >= 1, margin) > 0.65


# --------------------------------------------------------------------------- no cluster needed


def test_global_objective_pickles_and_checks_its_statistics():
    import pickle

    obj = GlobalPWiseRObjective(lam=0.5, total_weight=10.0, pair_weight_c=1.0, pair_weight_n=2.0)
    back = pickle.loads(pickle.dumps(obj))
    assert back._get_params() == obj._get_params()
    y = np.array([2, 1, 0, 0] * 5)
    g = np.repeat(np.arange(5), 4)
    with pytest.raises(ValueError, match="total_weight"):  # 20 rows > W = 10
        obj.grad_hess(np.zeros(20), y, group=g)
    with pytest.raises(ValueError, match="total_weight"):
        GlobalPWiseRObjective(total_weight=0.0, pair_weight_c=1.0, pair_weight_n=1.0)


def test_global_objective_shares_add_up_to_the_whole_loss():
    rng = np.random.default_rng(0)
    y = rng.choice([0, 1, 2], 200, p=[0.6, 0.3, 0.1])
    g = np.repeat(np.arange(20), 10)
    z = rng.normal(size=200)
    ref = PWiseRObjective(lam=1.5)
    from gbdt_pwiser import prepare_data

    d = prepare_data(y, g)
    obj = GlobalPWiseRObjective(
        lam=1.5, total_weight=d.total_weight, pair_weight_c=d.pair_weight_c, pair_weight_n=d.pair_weight_n
    )
    shares = obj.loss(z[:90], y[:90], g[:90]) + obj.loss(z[90:], y[90:], g[90:])
    assert shares == pytest.approx(ref.loss(z, y, g), rel=1e-12)


def test_entire_space_label_rejects_funnel_labels():
    with pytest.raises(ValueError, match="entire-space labels"):
        EntireSpaceLabelObjective()(np.array([0.0, 1.0, 2.0]), np.zeros(3))
