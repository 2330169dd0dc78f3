"""``load_log``: a user's own log in its own column names, CSV or Parquet (file, folder, glob), and its errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from gbdt_pwiser.datasets import AdLog, InferredCategoricalWarning, load_log, make_ad_log
from gbdt_pwiser.exceptions import ColumnError, DataSourceError

COLS = dict(click="clicked", conversion="booked", group="srch_id")


def hotel_frame(n_groups: int = 40, seed: int = 0) -> pd.DataFrame:
    """A hotel-search log in its own names: ids, text, bool and numeric columns, missing prices."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 8, n_groups)
    n = int(sizes.sum())
    clicked = rng.random(n) < 0.3
    return pd.DataFrame(
        {
            "srch_id": np.repeat(np.arange(100, 100 + n_groups), sizes),
            "price": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(40, 300, n)),
            "country": rng.choice(["fr", "de", "nl"], n),
            "promo": rng.random(n) < 0.5,
            "stars": rng.integers(1, 6, n),
            "clicked": clicked.astype(int),
            "booked": clicked & (rng.random(n) < 0.3),
        }
    )


def _load(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferredCategoricalWarning)
        return load_log(path, **{**COLS, **kw})


def test_csv_in_own_names_types_and_inferred_categoricals(tmp_path):
    frame = hotel_frame()
    frame.to_csv(tmp_path / "log.csv", index=False)
    with pytest.warns(InferredCategoricalWarning) as seen:
        log = load_log(tmp_path / "log.csv", **COLS)
    assert [w.message.columns for w in seen] == [["country", "promo"]]
    assert isinstance(log, AdLog) and log.weight is None
    assert list(log.X.columns) == ["price", "country", "promo", "stars"]
    assert [str(t) for t in log.X.dtypes] == ["float32", "category", "category", "float32"]
    assert log.X["country"].cat.categories.tolist() == ["de", "fr", "nl"]
    np.testing.assert_array_equal(log.X["price"].isna(), frame["price"].isna())  # missing stays missing
    np.testing.assert_array_equal(log.y, frame["clicked"] + frame["booked"])
    assert log.group.dtype == np.int64 and (log.group == frame["srch_id"]).all()


def test_parquet_file_folder_glob_and_csv_folder_read_alike(tmp_path):
    frame = hotel_frame()
    frame.to_csv(tmp_path / "log.csv", index=False)
    (tmp_path / "pq" / "day=1").mkdir(parents=True)
    (tmp_path / "csvs").mkdir()
    for k, idx in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[idx].to_parquet(tmp_path / "pq" / "day=1" / f"part-{k}.parquet", index=False)
        frame.iloc[idx].to_csv(tmp_path / "csvs" / f"part-{k}.csv", index=False)
    ref = _load(tmp_path / "log.csv")
    for source in (
        tmp_path / "pq",
        str(tmp_path / "pq" / "*" / "*.parquet"),
        tmp_path / "csvs",
        sorted(str(p) for p in (tmp_path / "pq").rglob("*.parquet")),
    ):
        log = _load(source)
        pd.testing.assert_frame_equal(log.X, ref.X)
        np.testing.assert_array_equal(log.y, ref.y)
        np.testing.assert_array_equal(log.group, ref.group)
    assert len(_load(tmp_path / "pq", nrows=10)) == 10 and len(_load(tmp_path / "log.csv", nrows=0)) == 0


def test_pandas_category_and_string_ids_in_parquet(tmp_path):
    frame = hotel_frame().assign(
        chain=lambda f: pd.Categorical(np.where(f["stars"] > 3, "lux", "eco")),
        srch_id=lambda f: "s" + f["srch_id"].astype(str),
    )
    frame.to_parquet(tmp_path / "log.parquet", index=False)
    with pytest.warns(InferredCategoricalWarning, match=r"\['country', 'promo', 'chain'\]"):
        log = load_log(tmp_path / "log.parquet", **COLS)
    assert log.X["chain"].cat.categories.tolist() == ["eco", "lux"]
    assert log.group[0] == frame["srch_id"].iloc[0] and log.n_groups == frame["srch_id"].nunique()


def test_explicit_categorical_wins_and_features_choose_columns(tmp_path):
    frame = hotel_frame()
    frame.to_csv(tmp_path / "log.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InferredCategoricalWarning)  # explicit: nothing inferred, no warning
        log = load_log(
            tmp_path / "log.csv", **COLS, features=["stars", "country", "srch_id"], categorical=["stars", "country"]
        )
    assert list(log.X.columns) == ["stars", "country", "srch_id"]  # the group may be a feature too
    assert [str(t) for t in log.X.dtypes] == ["category", "category", "float32"]
    assert log.X["stars"].cat.categories.tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(ColumnError, match=r"feature column 'country' has type string.*list it in categorical="):
        load_log(tmp_path / "log.csv", **COLS, categorical=["stars"])
    none = load_log(tmp_path / "log.csv", **COLS, features=["price", "promo"], categorical=[])
    assert [str(t) for t in none.X.dtypes] == ["float32", "float32"]  # bool as 0/1 when not categorical


def test_label_types_and_weights(tmp_path):
    frame = hotel_frame().assign(
        clicked=lambda f: f["clicked"].astype(bool),
        booked=lambda f: f["booked"].astype(int),
        w=lambda f: np.linspace(0.5, 2.0, len(f)),
    )
    frame.to_parquet(tmp_path / "log.parquet", index=False)
    log = _load(tmp_path / "log.parquet", weight="w")
    np.testing.assert_array_equal(log.y, frame["clicked"].astype(int) + frame["booked"])
    np.testing.assert_allclose(log.weight, frame["w"])
    assert "w" not in log.X.columns
    part = log.take(np.arange(5))
    np.testing.assert_allclose(part.weight, frame["w"][:5])


def _bad(tmp_path, edit, name="bad.csv"):
    frame = hotel_frame()
    edit(frame)
    path = tmp_path / name
    (frame.to_parquet if name.endswith(".parquet") else lambda p: frame.to_csv(p, index=False))(path)
    return path


def _nan_booked(f):
    f["booked"] = f["booked"].astype(float)
    f.loc[3, "booked"] = np.nan


def _nan_group(f):
    f["srch_id"] = f["srch_id"].astype(float)
    f.loc[5, "srch_id"] = np.nan


def _orphan_bookings(f):
    rows = np.flatnonzero(f["clicked"].to_numpy() == 0)[:3]
    f.loc[rows, "booked"] = True


@pytest.mark.parametrize(
    "edit, kw, error, match",
    [
        (lambda f: None, dict(click="clicks"), ColumnError, r"has no column 'clicks'; did you mean 'clicked'\?"),
        (lambda f: None, dict(group="search_id"), ColumnError, r"no column 'search_id'; did you mean 'srch_id'\?"),
        (
            lambda f: None,
            dict(features=["price", "Country"]),
            ColumnError,
            "no column 'Country'; did you mean 'country'",
        ),
        (_orphan_bookings, {}, ValueError, r"conversion without a click at 3 row\(s\)"),
        (_nan_booked, {}, ValueError, r"column 'booked' has 1 missing value"),
        (_nan_group, {}, ValueError, r"column 'srch_id' has 1 missing value"),
        (
            lambda f: f.__setitem__("clicked", f["clicked"] * 2),
            {},
            ValueError,
            r"column 'clicked' must contain only 0 and 1; found 2",
        ),
        (
            lambda f: f.__setitem__("day", pd.Timestamp("2026-01-02")),
            {},
            ColumnError,
            r"feature column 'day' has type (timestamp|date).*neither numeric nor categorical",
        ),
        (lambda f: f.__setitem__("w", -1.0), dict(weight="w"), ValueError, "weight column 'w' must be non-negative"),
        (lambda f: f.__setitem__("w", "x"), dict(weight="w"), TypeError, "weight column 'w' has type"),
        (lambda f: None, dict(weight="srch_id"), ValueError, r"\['srch_id'\] are given more than one role"),
        (lambda f: None, dict(categorical=["clicked"]), ValueError, r"categorical lists \['clicked'\], which are not"),
        (lambda f: None, dict(features=["price", "price"]), ValueError, "features lists columns"),
        (lambda f: None, dict(features=["booked"]), ValueError, "both features and labels"),
        (lambda f: None, dict(click=3), TypeError, "click must name a column"),
        (lambda f: None, dict(categorical=[1]), TypeError, "categorical must be a list of column names"),
        (lambda f: None, dict(nrows=-1), ValueError, "nrows must be an integer >= 0"),
    ],
)
def test_bad_logs_name_the_column_and_the_problem(tmp_path, edit, kw, error, match):
    for name in ("bad.csv", "bad.parquet"):
        path = _bad(tmp_path, edit, name)
        with pytest.raises(error, match=match):
            _load(path, **kw)


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        _load(tmp_path / "nope.csv")
    (tmp_path / "mixed").mkdir()
    hotel_frame().to_csv(tmp_path / "mixed" / "a.csv", index=False)
    hotel_frame().to_parquet(tmp_path / "mixed" / "b.parquet")
    with pytest.raises(ValueError, match="holds both CSV and Parquet"):
        _load(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no CSV or Parquet files"):
        _load(tmp_path / "empty")
    (tmp_path / "x.csv").write_text("clicked,booked,srch_id,price\n1,0,1,2.5\n0,0,1,abc\n")
    (tmp_path / "two").mkdir()
    pd.DataFrame({"clicked": [1], "booked": [0], "srch_id": [1], "price": ["cheap"]}).to_parquet(
        tmp_path / "two" / "a.parquet"
    )
    pd.DataFrame({"clicked": [1], "booked": [0], "srch_id": [1], "price": [2.5]}).to_parquet(
        tmp_path / "two" / "b.parquet"
    )
    with pytest.raises(DataSourceError, match="disagree on a column's type"):
        _load(tmp_path / "two")


def test_the_layout_loaders_and_load_log_agree(tmp_path):
    sim = make_ad_log(30, n_categorical=16, n_numerical=63, random_state=2)
    frame = sim.to_frame()
    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.CategoricalDtype):
            frame[c] = frame[c].astype(np.int32)
    frame.to_csv(tmp_path / "ali.csv", index=False)
    from gbdt_pwiser.datasets import ALIEXPRESS_CATEGORICAL, load_aliexpress

    ali = load_aliexpress(tmp_path / "ali.csv")
    own = load_log(
        tmp_path / "ali.csv",
        click="click",
        conversion="conversion",
        group="search_id",
        categorical=list(ALIEXPRESS_CATEGORICAL),
    )
    assert list(own.X.columns) == list(ali.X.columns)
    for c in ali.X.columns:  # the same values and categories (the layout reads ids as int32, load_log as int64)
        np.testing.assert_array_equal(np.asarray(own.X[c], dtype=float), np.asarray(ali.X[c], dtype=float))
    np.testing.assert_array_equal(own.y, ali.y)
    np.testing.assert_array_equal(own.group, ali.group)
