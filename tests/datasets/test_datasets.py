"""Tests for gbdt_pwiser.datasets: loaders, simulator, group split."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbdt_pwiser.datasets import (
    ALI_CCP_COLUMNS,
    ALI_CCP_DENSE,
    ALI_CCP_SPARSE,
    ALIEXPRESS_CATEGORICAL,
    ALIEXPRESS_NUMERICAL,
    AdLog,
    load_ali_ccp,
    load_aliexpress,
    make_ad_log,
    train_test_split_by_group,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ALIEXPRESS_FILES = [
    "aliexpress_sample/aliexpress_train_sample.csv",
    "aliexpress_sample/aliexpress_test_sample.csv",
    "fuxictr-aliexpress-tiny-mtl/train.csv",
    "fuxictr-aliexpress-tiny-mtl/test.csv",
]
ALI_CCP_FILES = [
    "ali_ccp_sample/ali_ccp_train_sample.csv",
    "ali_ccp_sample/ali_ccp_val_sample.csv",
    "ali_ccp_sample/ali_ccp_test_sample.csv",
]


def _sample(rel: str) -> Path:
    f = DATA / rel
    if not f.is_file():
        pytest.skip(f"shared sample data not available: {f}")
    return f


@pytest.fixture(scope="module")
def sim() -> AdLog:
    # about 200k rows: 8000 requests of mean size 25
    return make_ad_log(8000, random_state=0)


# ----------------------------------------------------------------------------- loaders


@pytest.mark.parametrize("rel", ALIEXPRESS_FILES)
def test_load_aliexpress_sample(rel: str) -> None:
    f = _sample(rel)
    raw = pd.read_csv(f)
    log = load_aliexpress(f)
    assert isinstance(log, AdLog)
    assert len(log) == len(raw)
    assert list(log.X.columns) == list(ALIEXPRESS_CATEGORICAL + ALIEXPRESS_NUMERICAL)
    for c in ALIEXPRESS_CATEGORICAL:
        assert isinstance(log.X[c].dtype, pd.CategoricalDtype)
        np.testing.assert_array_equal(log.X[c].astype(np.int64).to_numpy(), raw[c].to_numpy())
        cats = log.X[c].cat.categories
        assert cats.is_monotonic_increasing and cats.dtype.kind == "i"
    for c in ALIEXPRESS_NUMERICAL:
        assert log.X[c].dtype == np.float32
    np.testing.assert_allclose(
        log.X[list(ALIEXPRESS_NUMERICAL)].to_numpy(np.float64),
        raw[list(ALIEXPRESS_NUMERICAL)].to_numpy(),
        rtol=1e-6,
        atol=1e-7,
    )
    assert not any(t is np.dtype(object) for t in log.X.dtypes)
    assert log.y.dtype == np.int8 and log.group.dtype == np.int64
    np.testing.assert_array_equal(log.y, raw["click"] + raw["conversion"])
    np.testing.assert_array_equal(log.group, raw["search_id"])
    np.testing.assert_array_equal(log.click, raw["click"])
    np.testing.assert_array_equal(log.conversion, raw["conversion"])
    assert log.truth is None
    assert "AdLog(n_rows=" in repr(log)


def test_load_aliexpress_nrows() -> None:
    f = _sample(ALIEXPRESS_FILES[0])
    full = load_aliexpress(f)
    head = load_aliexpress(f, nrows=7)
    assert len(head) == 7
    np.testing.assert_array_equal(head.y, full.y[:7])
    np.testing.assert_array_equal(head.group, full.group[:7])
    np.testing.assert_array_equal(head.X["numerical_30"].to_numpy(), full.X["numerical_30"].to_numpy()[:7])
    assert len(load_aliexpress(f, nrows=10**6)) == len(full)
    empty = load_aliexpress(f, nrows=0)
    assert len(empty) == 0 and empty.X.shape[1] == 79
    with pytest.raises(ValueError, match="nrows"):
        load_aliexpress(f, nrows=-1)


@pytest.mark.parametrize("rel", ALI_CCP_FILES)
def test_load_ali_ccp_sample(rel: str) -> None:
    f = _sample(rel)
    raw = pd.read_csv(f)
    assert list(raw.columns) == list(ALI_CCP_COLUMNS)
    log = load_ali_ccp(f)
    assert log.X.shape == (len(raw), 31)
    assert list(log.X.columns) == list(ALI_CCP_SPARSE + ALI_CCP_DENSE)
    for c in ALI_CCP_SPARSE:
        assert isinstance(log.X[c].dtype, pd.CategoricalDtype)
        np.testing.assert_array_equal(log.X[c].astype(np.int64).to_numpy(), raw[c].to_numpy())
    for c in ALI_CCP_DENSE:
        assert log.X[c].dtype == np.float32
        np.testing.assert_allclose(log.X[c].to_numpy(), raw[c].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(log.y, raw["click"] + raw["purchase"])
    assert log.group.dtype == np.int64
    np.testing.assert_array_equal(log.group, raw["101"])  # the user field is the group


def test_loaders_accept_pathlike_and_str() -> None:
    f = _sample(ALI_CCP_FILES[0])
    a, b = load_ali_ccp(f), load_ali_ccp(str(f))
    assert a.X.equals(b.X)


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "f.csv") -> Path:
    f = tmp_path / name
    df.to_csv(f, index=False)
    return f


def _small_aliexpress() -> pd.DataFrame:
    return make_ad_log(20, n_categorical=16, n_numerical=63, random_state=3).to_frame()


def test_round_trip_simulated_aliexpress(tmp_path: Path) -> None:
    sim = make_ad_log(40, n_categorical=16, n_numerical=63, random_state=5)
    f = _write(tmp_path, sim.to_frame())
    log = load_aliexpress(f)
    np.testing.assert_array_equal(log.y, sim.y)
    np.testing.assert_array_equal(log.group, sim.group)
    np.testing.assert_array_equal(log.X["categorical_4"].astype(np.int64), sim.X["categorical_4"].astype(np.int64))
    np.testing.assert_allclose(
        log.X[list(ALIEXPRESS_NUMERICAL)].to_numpy(), sim.X[list(ALIEXPRESS_NUMERICAL)].to_numpy(), rtol=1e-6
    )


def test_gzip_file(tmp_path: Path) -> None:
    df = _small_aliexpress()
    f = tmp_path / "f.csv.gz"
    df.to_csv(f, index=False, compression="gzip")
    assert len(load_aliexpress(f)) == len(df)


def test_schema_missing_column(tmp_path: Path) -> None:
    df = _small_aliexpress().drop(columns=["numerical_5", "categorical_12"])
    with pytest.raises(ValueError, match="missing columns") as e:
        load_aliexpress(_write(tmp_path, df))
    assert "numerical_5" in str(e.value) and "categorical_12" in str(e.value)


def test_schema_unexpected_column(tmp_path: Path) -> None:
    df = _small_aliexpress()
    df["extra_col"] = 1
    with pytest.raises(ValueError, match=r"unexpected columns.*extra_col"):
        load_aliexpress(_write(tmp_path, df))


def test_schema_column_order_is_free(tmp_path: Path) -> None:
    df = _small_aliexpress()
    f = _write(tmp_path, df[df.columns[::-1]])
    log = load_aliexpress(f)
    assert list(log.X.columns) == list(ALIEXPRESS_CATEGORICAL + ALIEXPRESS_NUMERICAL)
    np.testing.assert_array_equal(log.y, make_ad_log(20, n_categorical=16, n_numerical=63, random_state=3).y)


def test_schema_ali_ccp_missing_purchase(tmp_path: Path) -> None:
    f = _sample(ALI_CCP_FILES[0])
    df = pd.read_csv(f).drop(columns=["purchase"])
    with pytest.raises(ValueError, match=r"missing columns \['purchase'\]"):
        load_ali_ccp(_write(tmp_path, df))


def test_aliexpress_file_is_not_ali_ccp() -> None:
    f = _sample(ALIEXPRESS_FILES[0])
    with pytest.raises(ValueError, match=r"Ali-CCP.*missing columns.*unexpected columns"):
        load_ali_ccp(f)


def test_conversion_without_click(tmp_path: Path) -> None:
    df = _small_aliexpress()
    row = int(np.flatnonzero(df["click"].to_numpy() == 0)[3])
    df.loc[row, "conversion"] = 1
    f = _write(tmp_path, df)
    with pytest.raises(ValueError, match="conversion without a click") as e:
        load_aliexpress(f)
    assert str(f) in str(e.value)


def test_purchase_without_click_ali_ccp(tmp_path: Path) -> None:
    df = pd.read_csv(_sample(ALI_CCP_FILES[0]))
    row = int(np.flatnonzero(df["click"].to_numpy() == 0)[0])
    df.loc[row, "purchase"] = 1
    with pytest.raises(ValueError, match="conversion without a click"):
        load_ali_ccp(_write(tmp_path, df))


def test_bad_label_value(tmp_path: Path) -> None:
    df = _small_aliexpress()
    df.loc[0, "click"] = 3
    with pytest.raises(ValueError, match="column 'click' must contain only 0 and 1"):
        load_aliexpress(_write(tmp_path, df))


def test_missing_label_or_group(tmp_path: Path) -> None:
    df = _small_aliexpress().astype({"click": "Int64"})
    df.loc[1, "click"] = pd.NA
    with pytest.raises(ValueError, match="'click' has 1 missing value"):
        load_aliexpress(_write(tmp_path, df))
    df = _small_aliexpress().astype({"search_id": "Int64"})
    df.loc[2, "search_id"] = pd.NA
    with pytest.raises(ValueError, match="'search_id' has 1 missing value"):
        load_aliexpress(_write(tmp_path, df, "g.csv"))


def test_missing_categorical_cell_is_nan(tmp_path: Path) -> None:
    df = _small_aliexpress().astype({"categorical_2": "Int64"})
    df.loc[4, "categorical_2"] = pd.NA
    log = load_aliexpress(_write(tmp_path, df))
    assert log.X["categorical_2"].isna().sum() == 1 and pd.isna(log.X["categorical_2"][4])


def test_unparsable_cell(tmp_path: Path) -> None:
    df = _small_aliexpress().astype({"categorical_3": object})
    df.loc[0, "categorical_3"] = "abc"
    with pytest.raises(ValueError, match=r"cannot parse.*column 'categorical_3'.*abc"):
        load_aliexpress(_write(tmp_path, df))


def test_missing_file_directory_empty(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_aliexpress(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="directory"):
        load_ali_ccp(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_aliexpress(empty)


def test_wide_sparse_categorical_codes(tmp_path: Path) -> None:
    df = _small_aliexpress()
    df["categorical_1"] = np.where(np.arange(len(df)) % 2 == 0, 7, 2_000_000_000)
    log = load_aliexpress(_write(tmp_path, df))
    assert list(log.X["categorical_1"].cat.categories) == [7, 2_000_000_000]
    np.testing.assert_array_equal(log.X["categorical_1"].astype(np.int64), df["categorical_1"])


# ----------------------------------------------------------------------------- AdLog


def test_adlog_helpers() -> None:
    log = make_ad_log(30, random_state=2)
    shuffled = log.take(np.random.default_rng(0).permutation(len(log)))
    with pytest.raises(ValueError, match="contiguous"):
        shuffled.group_sizes()
    back = shuffled.sort_by_group()
    np.testing.assert_array_equal(back.group_sizes(), log.group_sizes())
    assert back.group_sizes().sum() == len(log)
    assert log.sort_by_group() is log
    mask = log.group < 5
    part = log.take(mask)
    assert len(part) == int(mask.sum()) and part.truth is not None and len(part.truth) == len(part)
    assert log.categorical_columns == [f"categorical_{k}" for k in range(1, 9)]
    assert log.numerical_columns == [f"numerical_{k}" for k in range(1, 13)]
    with pytest.raises(ValueError, match="same number of rows"):
        AdLog(X=log.X, y=log.y[:-1], group=log.group)


def test_align_categories(tmp_path: Path) -> None:
    df = _small_aliexpress()
    a = load_aliexpress(_write(tmp_path, df.iloc[:200], "a.csv"))
    b = load_aliexpress(_write(tmp_path, df.iloc[200:], "b.csv"))
    aligned = b.align_categories(a)
    for c in a.categorical_columns:
        assert aligned.X[c].cat.categories.equals(a.X[c].cat.categories)
        known = b.X[c].isin(a.X[c].cat.categories).to_numpy()
        np.testing.assert_array_equal(aligned.X[c].isna().to_numpy(), ~known)


# ----------------------------------------------------------------------------- simulator


def test_simulator_schema(sim: AdLog) -> None:
    cats = [f"categorical_{k}" for k in range(1, 9)]
    nums = [f"numerical_{k}" for k in range(1, 13)]
    assert list(sim.X.columns) == cats + nums
    assert all(isinstance(sim.X[c].dtype, pd.CategoricalDtype) for c in cats)
    assert all(sim.X[c].dtype == np.float32 for c in nums)
    assert not sim.X.isna().any().any()
    assert sim.y.dtype == np.int8 and set(np.unique(sim.y)) == {0, 1, 2}
    assert sim.group.dtype == np.int64
    assert np.all(np.diff(sim.group) >= 0)  # contiguous, sorted requests
    assert sim.n_groups == 8000
    # position restarts at 0 in each request
    sizes = sim.group_sizes()
    starts = np.cumsum(sizes) - sizes
    assert np.all(sim.X["numerical_1"].to_numpy()[starts] == 0)
    assert list(sim.to_frame().columns) == ["search_id", *cats, *nums, "click", "conversion"]


def test_simulator_rates(sim: AdLog) -> None:
    n = len(sim)
    assert 180_000 < n < 220_000
    ctr, cvr, acc = 0.025, 0.025, 0.3
    clicks = sim.click.sum()
    conv = sim.conversion.sum()
    # realised rates within 4 binomial standard errors plus 5 % calibration slack
    se_ctr = math.sqrt(ctr * (1 - ctr) / n)
    assert abs(clicks / n - ctr) < 4 * se_ctr + 0.05 * ctr
    se_cvr = math.sqrt(cvr * (1 - cvr) / clicks)
    assert abs(conv / clicks - cvr) < 4 * se_cvr + 0.05 * cvr
    share = sim.truth["accidental"].sum() / clicks
    assert abs(share - acc) < 4 * math.sqrt(acc * (1 - acc) / clicks) + 0.02
    # the expected rates are calibrated more tightly
    t = sim.truth
    assert t["p_click"].mean() == pytest.approx(ctr, rel=0.02)
    assert t["p_conversion"].sum() / t["p_click"].sum() == pytest.approx(cvr, rel=0.03)
    assert abs(sim.group_sizes().mean() - 25) < 0.5


def test_simulator_labels_consistent_with_truth(sim: AdLog) -> None:
    t = sim.truth
    acc = t["accidental"].to_numpy()
    assert np.all(sim.click[acc] == 1) and np.all(sim.conversion[acc] == 0)
    np.testing.assert_allclose(t["p_cvr"] * t["p_click"], t["p_conversion"], rtol=1e-5)
    assert ((t["p_click"] > 0) & (t["p_click"] < 1)).all()


def test_simulator_has_pairs(sim: AdLog) -> None:
    g = sim.group
    conv = np.bincount(g, weights=sim.conversion)
    click_only = np.bincount(g, weights=sim.y == 1)
    size = np.bincount(g)
    has_conv = conv > 0
    assert has_conv.sum() >= 50
    # conversion x (non-click or click-only) pairs in almost every converting request
    assert np.mean(size[has_conv] > conv[has_conv]) > 0.95
    # conversion x click-only pairs in a good share of them
    assert np.mean(click_only[has_conv] > 0) > 0.3


def test_simulator_pairwise_signal(sim: AdLog) -> None:
    from sklearn.metrics import roc_auc_score

    t, v, c = sim.truth, sim.conversion, sim.click == 1
    # the true click probability ranks conversions clearly worse than the true
    # conversion probability: accidental clicks dilute the click signal
    assert roc_auc_score(v, t["p_click"]) < roc_auc_score(v, t["p_conversion"]) - 0.02
    assert roc_auc_score(v[c], t["p_click"][c]) < roc_auc_score(v[c], t["p_cvr"][c]) - 0.08


def test_simulator_determinism() -> None:
    a = make_ad_log(300, random_state=11)
    b = make_ad_log(300, random_state=11)
    assert a.X.equals(b.X) and a.truth.equals(b.truth)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.group, b.group)
    c = make_ad_log(300, random_state=12)
    assert not (len(a) == len(c) and a.X.equals(c.X))
    assert not np.array_equal(a.X["numerical_2"].to_numpy()[:100], c.X["numerical_2"].to_numpy()[:100])


def test_simulator_knobs() -> None:
    log = make_ad_log(400, n_categorical=3, n_numerical=20, accidental_click_rate=0.0, random_state=1)
    assert log.X.shape[1] == 23
    assert not log.truth["accidental"].any()
    assert (log.truth["p_accidental_click"] == 0).all()
    wide = make_ad_log(50, n_categorical=16, n_numerical=63, random_state=1)
    assert wide.X.shape[1] == 79
    only_num = make_ad_log(50, n_categorical=0, n_numerical=2, with_truth=False)
    assert list(only_num.X.columns) == ["numerical_1", "numerical_2"] and only_num.truth is None
    ones = make_ad_log(50, mean_request_size=1)
    assert np.all(ones.group_sizes() == 1)
    big = make_ad_log(2000, mean_request_size=40, random_state=3)
    assert abs(big.group_sizes().mean() - 40) < 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ctr": 0.0}, "ctr"),
        ({"ctr": 1.5}, "ctr"),
        ({"cvr": 0.8, "accidental_click_rate": 0.3}, "accidental clicks never convert"),
        ({"accidental_click_rate": 1.0}, "accidental_click_rate"),
        ({"mean_request_size": 0.5}, "mean_request_size"),
        ({"n_categorical": 0, "n_numerical": 0}, "at least 1"),
        ({"position_bias": -1}, "position_bias"),
        ({"zipf_a": float("nan")}, "zipf_a"),
    ],
)
def test_simulator_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_ad_log(10, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_numerical": 2.5}, "n_numerical must be an integer"),
        ({"ctr": "0.1"}, "ctr must be a real number"),
        ({"n_items": True}, "n_items must be an integer"),
    ],
)
def test_simulator_rejects_wrong_types(kwargs: dict, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        make_ad_log(10, **kwargs)


def test_loader_nrows_is_checked_by_name(tmp_path: Path) -> None:
    f = tmp_path / "sim.csv"
    make_ad_log(20, n_categorical=16, n_numerical=63, random_state=0).to_frame().to_csv(f, index=False)
    with pytest.raises(ValueError, match="nrows must be an integer >= 0"):
        load_aliexpress(f, nrows=-1)
    with pytest.raises(TypeError, match="nrows must be an integer"):
        load_aliexpress(f, nrows=2.0)
    assert len(load_aliexpress(f, nrows=0)) == 0


def test_simulator_rejects_no_requests() -> None:
    with pytest.raises(ValueError, match="n_requests"):
        make_ad_log(0)


# ----------------------------------------------------------------------------- split


def test_split_by_group(sim: AdLog) -> None:
    train, test = train_test_split_by_group(sim, test_size=0.2, random_state=0)
    assert len(np.intersect1d(np.unique(train.group), np.unique(test.group))) == 0
    assert len(train) + len(test) == len(sim)
    assert test.n_groups == math.ceil(0.2 * sim.n_groups)
    assert 0.15 < len(test) / len(sim) < 0.25
    assert np.all(np.diff(train.group) >= 0)  # row order kept
    assert train.truth is not None and len(train.truth) == len(train)
    _train2, test2 = train_test_split_by_group(sim, test_size=0.2, random_state=0)
    np.testing.assert_array_equal(test.group, test2.group)
    _, test3 = train_test_split_by_group(sim, test_size=0.2, random_state=1)
    assert not np.array_equal(np.unique(test.group), np.unique(test3.group))


def test_split_by_group_int_and_errors() -> None:
    log = make_ad_log(10, random_state=0)
    train, test = train_test_split_by_group(log, test_size=3)
    assert test.n_groups == 3 and train.n_groups == 7
    one = log.take(log.group == 0)
    with pytest.raises(ValueError, match="at least 2"):
        train_test_split_by_group(one)
    for bad in (0.0, 1.0, 0, 10, float("nan")):
        with pytest.raises(ValueError, match="test_size"):
            train_test_split_by_group(log, test_size=bad)
    for bad in ("x", True, None):
        with pytest.raises(TypeError, match="test_size"):
            train_test_split_by_group(log, test_size=bad)
    tiny = log.take(log.group <= 1)
    tr, te = train_test_split_by_group(tiny, test_size=0.01)
    assert tr.n_groups == 1 and te.n_groups == 1


def test_split_is_scikit_learns_group_shuffle_split(sim: AdLog) -> None:
    from sklearn.model_selection import GroupShuffleSplit

    n_groups = sim.n_groups
    n_test = math.ceil(0.2 * n_groups)
    tr_idx, te_idx = next(
        GroupShuffleSplit(n_splits=1, test_size=n_test, train_size=n_groups - n_test, random_state=7).split(
            np.zeros(len(sim)), groups=sim.group
        )
    )
    train, test = train_test_split_by_group(sim, test_size=0.2, random_state=7)
    np.testing.assert_array_equal(test.group, sim.group[np.sort(te_idx)])
    np.testing.assert_array_equal(train.group, sim.group[np.sort(tr_idx)])
    # a Generator seeds the splitter deterministically
    a = train_test_split_by_group(sim, random_state=np.random.default_rng(3))[1]
    b = train_test_split_by_group(sim, random_state=np.random.default_rng(3))[1]
    np.testing.assert_array_equal(a.group, b.group)


def test_split_unsorted_groups() -> None:
    f = DATA / ALIEXPRESS_FILES[2]
    if not f.is_file():
        pytest.skip("shared sample data not available")
    log = load_aliexpress(f)
    train, test = train_test_split_by_group(log, test_size=0.3, random_state=4)
    assert not set(train.group) & set(test.group)
    assert len(train) + len(test) == len(log)


def test_schema_duplicated_column(tmp_path: Path) -> None:
    f = _sample(ALI_CCP_FILES[0])
    lines = f.read_text().splitlines()
    header = lines[0].split(",")
    header[-1] = "D702"  # D853 renamed to a duplicate of D702
    g = tmp_path / "dup.csv"
    g.write_text("\n".join([",".join(header), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"missing columns \['D853'\].*duplicated columns \['D702'\]"):
        load_ali_ccp(g)
