"""gbdt-pwiser compare --data with a Parquet folder or glob: in memory, and read on the workers of a Dask cluster."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from gbdt_pwiser.cli import main
from gbdt_pwiser.datasets import load_aliexpress, load_parquet_log, make_ad_log


@pytest.fixture(scope="module")
def parquet_log(tmp_path_factory):
    """A simulated log in the AliExpress layout: 3 Parquet files (integer ids, as processed logs store them)."""
    pytest.importorskip("pyarrow")
    d = tmp_path_factory.mktemp("parquet_log")
    sim = make_ad_log(400, n_categorical=16, n_numerical=63, random_state=3)
    frame = sim.to_frame()
    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.CategoricalDtype):
            frame[c] = frame[c].astype(np.int32)
    frame.to_csv(d / "log.csv", index=False)
    folder = d / "log"
    folder.mkdir()
    for k, idx in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[idx].to_parquet(folder / f"part-{k}.parquet", index=False)
    return d


def test_parquet_folder_and_glob_equal_the_csv(parquet_log):
    csv = load_aliexpress(parquet_log / "log.csv")
    for source in (parquet_log / "log", str(parquet_log / "log" / "part-*.parquet")):
        log = load_parquet_log(source)
        pd.testing.assert_frame_equal(log.X, csv.X)
        np.testing.assert_array_equal(log.y, csv.y)
        np.testing.assert_array_equal(log.group, csv.group)
    assert len(load_parquet_log(parquet_log / "log", nrows=50)) == 50


def _compare(data, out, *extra):
    return main(
        [
            "compare",
            "--data",
            str(data),
            "--n-estimators",
            "5",
            "--quiet",
            "--bootstrap",
            "0",
            "--no-sweep",
            "--no-plots",
            "--out",
            str(out),
            *extra,
        ]
    )


def test_compare_reads_a_parquet_folder_like_its_csv(parquet_log, tmp_path):
    assert _compare(parquet_log / "log", tmp_path / "pq") == 0
    assert _compare(parquet_log / "log.csv", tmp_path / "csv") == 0
    pq = json.loads((tmp_path / "pq" / "results.json").read_text())
    csv = json.loads((tmp_path / "csv" / "results.json").read_text())
    assert pq["models"] == csv["models"] == ["BCE", "PWiseR (λ=1)", "weighted BCE (α=1)"]
    for name in pq["models"]:  # the same log, split and models: the same numbers
        for key, value in csv["results"][name].items():
            if key != "fit_s":
                np.testing.assert_equal(pq["results"][name][key], value)
    assert {k: v for k, v in pq["data"].items() if k != "source"} == {
        k: v for k, v in csv["data"].items() if k != "source"
    }


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "nothing-*.parquet", "no file matches the glob"),
        (lambda d: d, "holds no CSV or Parquet files"),
        (lambda d: d / "bad", "missing columns"),
    ],
)
def test_parquet_errors_are_one_line(tmp_path, capsys, make, message):
    (tmp_path / "bad").mkdir()
    pd.DataFrame({"click": [1, 0], "conversion": [0, 0]}).to_parquet(tmp_path / "bad" / "x.parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    target = make(tmp_path) if message != "holds no CSV or Parquet files" else empty
    assert _compare(target, tmp_path / "out") != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _bad_folder(parquet_log, tmp_path, edit):
    """A copy of the log's Parquet files with ``edit(frame, k)`` applied to file ``k``."""
    folder = tmp_path / "bad-log"
    folder.mkdir()
    for k, f in enumerate(sorted((parquet_log / "log").glob("*.parquet"))):
        edit(frame := pd.read_parquet(f), k)
        frame.to_parquet(folder / f.name, index=False)
    return folder


def _yes_no_clicks(frame, k):
    frame["click"] = np.where(frame["click"] == 1, "yes", "no")


def _fractional_category(frame, k):
    if k == 1:
        frame["categorical_3"] = frame["categorical_3"].astype(np.float64) + 0.5


def _missing_conversion(frame, k):
    if k == 2:
        frame["conversion"] = frame["conversion"].astype("Int8")
        frame.loc[frame.index[4], "conversion"] = pd.NA


@pytest.mark.parametrize(
    "edit, message",
    [
        (_yes_no_clicks, r"part-0.parquet': column 'click' \(\w*string\) cannot be read as int8"),
        (_fractional_category, r"part-1.parquet': column 'categorical_3' \(double\) cannot be read as int32"),
        (_missing_conversion, r"part-2.parquet': column 'conversion' has 1 missing value"),
    ],
)
def test_bad_parquet_columns_name_the_file_and_the_column(parquet_log, tmp_path, capsys, edit, message):
    folder = _bad_folder(parquet_log, tmp_path, edit)
    assert _compare(folder, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1, err


def test_bad_parquet_columns_on_dask_are_the_same_one_line_errors(parquet_log, tmp_path, capfd):
    """The workers read each file as the in-memory loader does: the same errors, one line, no worker logs."""
    pytest.importorskip("distributed")
    folder = _bad_folder(parquet_log, tmp_path, _yes_no_clicks)
    assert _compare(folder, tmp_path / "out", "--dask-workers", "2") == 2
    err = capfd.readouterr().err
    assert re.search(r"part-\d.parquet': column 'click' \(\w*string\) cannot be read as int8", err), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_compare_on_dask_reads_parquet_on_the_workers(parquet_log, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    pytest.importorskip("xgboost.dask")
    import gbdt_pwiser.cli._data as data

    def no_local_read(*a, **k):  # the training rows must never be read on the client
        raise AssertionError("the Parquet log was read on the client")

    for name in ("load_parquet_log", "load_log"):
        monkeypatch.setattr(f"gbdt_pwiser.datasets.{name}", no_local_read)
    assert data.read_log  # the module is imported
    rc = _compare(str(parquet_log / "log" / "*.parquet"), tmp_path, "--dask-workers", "2")
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["data"]["rows"] == len(load_aliexpress(parquet_log / "log.csv"))
    assert 0 < res["data"]["test_rows"] < res["data"]["rows"]
    assert res["results"]["PWiseR (λ=1)"]["ctr_auc"] > 0.6
