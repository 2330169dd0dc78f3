"""Out-of-core XGBoost: ExtMemQuantileDMatrix over Parquet shards gives the in-memory gradients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

xgb = pytest.importorskip("xgboost")
pytest.importorskip("pyarrow")

from reference import assert_handed_to_booster  # noqa: E402

from gbdt_pwiser import PWiseRObjective  # noqa: E402
from gbdt_pwiser.datasets import make_ad_log  # noqa: E402
from gbdt_pwiser.datasets.sources import list_files  # noqa: E402
from gbdt_pwiser.engines.external import external_dmatrix  # noqa: E402
from gbdt_pwiser.metrics import auc  # noqa: E402


def _write_shards(tmp_path, n_shards=3, seed=0, weighted=True):
    log = make_ad_log(150, random_state=seed)
    rng = np.random.default_rng(seed)
    X = log.X.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(np.float64)
    df = X.iloc[:, :6].copy()
    df.columns = [f"f{i}" for i in range(6)]
    df["click"] = (np.asarray(log.y) >= 1).astype(np.int8)
    df["conversion"] = (np.asarray(log.y) == 2).astype(np.int8)
    df["req"] = np.asarray(log.group)
    if weighted:
        df["w"] = rng.uniform(0.5, 2.0, len(df)).astype(np.float32).astype(np.float64)
    df["z"] = rng.normal(size=len(df)).astype(np.float32).astype(np.float64)
    groups = df["req"].unique()
    shard_of = pd.Series(rng.integers(0, n_shards, groups.size), index=groups)
    parts = []
    for s in range(n_shards):
        part = df[df["req"].map(shard_of) == s].sort_values("req", kind="stable")
        part.to_parquet(tmp_path / f"part-{s:03d}.parquet", index=False)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


class _FirstRound:
    def __init__(self, obj):
        self.obj, self.seen = obj, []

    def __call__(self, predt, dtrain):
        g, h = self.obj(predt, dtrain)
        self.seen.append((np.array(predt), g.copy(), h.copy()))
        return g, h


@pytest.mark.parametrize("weighted", [True, False])
def test_external_memory_first_round_matches_in_memory(tmp_path, weighted):
    full = _write_shards(tmp_path, weighted=weighted)
    feats = [f"f{i}" for i in range(6)]
    dm = external_dmatrix(
        tmp_path,
        label=["click", "conversion"],
        group="req",
        features=feats,
        weight="w" if weighted else None,
        base_margin="z",
        max_bin=32,
        cache_prefix=str(tmp_path / "cache"),
    )
    assert dm.num_row() == len(full)
    rec = _FirstRound(PWiseRObjective(lam=2.0, margin_click_only=0.1, margin_no_click=0.3))
    booster = xgb.train(
        {"tree_method": "hist", "max_depth": 3, "disable_default_eval_metric": 1, "max_bin": 32, "nthread": 1},
        dm,
        num_boost_round=3,
        obj=rec,
    )
    z0, g, h = rec.seen[0]
    np.testing.assert_array_equal(z0, full["z"].to_numpy())
    y = (full["click"] + full["conversion"]).to_numpy()
    g0, h0 = PWiseRObjective(lam=2.0, margin_click_only=0.1, margin_no_click=0.3).grad_hess(
        full["z"].to_numpy(), y, group=full["req"].to_numpy(), weight=full["w"].to_numpy() if weighted else None
    )
    assert_handed_to_booster(g, g0, rtol=1e-9)
    assert_handed_to_booster(h, h0, rtol=1e-9)
    # the in-memory DMatrix of the same rows gives the same first-round gradients
    mem = xgb.DMatrix(
        full[feats],
        label=y,
        qid=pd.factorize(full["req"])[0],
        weight=full["w"] if weighted else None,
        base_margin=full["z"],
    )
    gm, _ = PWiseRObjective(lam=2.0, margin_click_only=0.1, margin_no_click=0.3)(full["z"].to_numpy(), mem)
    np.testing.assert_allclose(g, gm, rtol=1e-12, atol=0)
    assert len(rec.seen) == 3 and booster.num_boosted_rounds() == 3


def test_external_memory_trains_a_sensible_model(tmp_path):
    full = _write_shards(tmp_path, n_shards=4, seed=2, weighted=False)
    feats = [f"f{i}" for i in range(6)]
    dm = external_dmatrix(
        str(tmp_path / "*.parquet"),
        label=["click", "conversion"],
        group="req",
        features=feats,
        cache_prefix=str(tmp_path / "cache"),
    )
    obj = PWiseRObjective(lam=1.0)
    from gbdt_pwiser import initial_margin

    y = (full["click"] + full["conversion"]).to_numpy()
    booster = xgb.train(
        {
            "tree_method": "hist",
            "max_depth": 4,
            "eta": 0.2,
            "nthread": 1,
            "base_score": initial_margin(y),
            "disable_default_eval_metric": 1,
        },
        dm,
        num_boost_round=20,
        obj=obj,
    )
    margin = booster.predict(xgb.DMatrix(full[feats]), output_margin=True)
    assert auc(y >= 1, margin) > 0.65


def test_shard_layout_errors(tmp_path):
    full = _write_shards(tmp_path, n_shards=2, weighted=False)
    feats = [f"f{i}" for i in range(6)]
    # a group split over two shards
    bad = tmp_path / "bad"
    bad.mkdir()
    first_group = full["req"].iloc[0]
    rows = full[full["req"] == first_group]
    pd.concat([full.iloc[len(rows) :], rows.iloc[:1]]).sort_values("req").to_parquet(bad / "a.parquet")
    rows.iloc[1:].to_parquet(bad / "b.parquet")
    with pytest.raises(ValueError, match="more than one shard"):
        external_dmatrix(
            bad, label=["click", "conversion"], group="req", features=feats, cache_prefix=str(tmp_path / "c1")
        )
    # rows of a group not contiguous inside a shard
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    full.sample(frac=1.0, random_state=0).to_parquet(shuffled / "a.parquet")
    with pytest.raises(ValueError, match="not contiguous"):
        external_dmatrix(
            shuffled, label=["click", "conversion"], group="req", features=feats, cache_prefix=str(tmp_path / "c2")
        )
    with pytest.raises(ValueError, match="no Parquet files"):
        list_files(tmp_path / "nothing-here*")
    # default features: the pandas index stored by to_parquet is not one; none left is an error
    indexed = tmp_path / "indexed"
    indexed.mkdir()
    full.set_index(full.index * 2).to_parquet(indexed / "a.parquet")  # a non-range index is stored
    dm = external_dmatrix(indexed, label=["click", "conversion"], group="req", cache_prefix=str(tmp_path / "c3"))
    assert dm.feature_names == [*feats, "z"]
    none = tmp_path / "none"
    none.mkdir()
    full[["click", "conversion", "req"]].to_parquet(none / "a.parquet", index=False)
    for features in (None, []):
        with pytest.raises(ValueError, match=r"no feature column|features is empty"):
            external_dmatrix(
                none, label=["click", "conversion"], group="req", features=features, cache_prefix=str(tmp_path / "c4")
            )


def test_group_start_flags_read_and_checked():
    rng = np.random.default_rng(0)
    y = np.array([2, 0, 1, 2, 0, 0, 0], dtype=np.float32)
    w = rng.uniform(0.5, 2.0, 7)
    z = rng.normal(size=7)
    d = xgb.DMatrix(np.zeros((7, 1)), label=y, weight=w)
    d.set_float_info("label_lower_bound", np.array([1, 0, 0, 1, 0, 0, 1], dtype=np.float32))
    g, _ = PWiseRObjective(lam=1.0)(z, d)
    g0, _ = PWiseRObjective(lam=1.0).grad_hess(z, y, group=[0, 0, 0, 1, 1, 1, 2], weight=w.astype(np.float32))
    assert_handed_to_booster(g, g0)
    d.set_float_info("label_lower_bound", np.array([0, 0, 0, 1, 0, 0, 1], dtype=np.float32))
    with pytest.raises(ValueError, match="group-start flags"):
        PWiseRObjective(lam=1.0)(z, d)
