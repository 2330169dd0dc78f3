"""gbdt-pwiser compare on a log in its own column names (--click/--conversion/--group...), and the main job's
conversion weighting and calibration options."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gbdt_pwiser.cli import main
from gbdt_pwiser.datasets import make_ad_log

COLUMNS = ["--click", "clicked", "--conversion", "booked", "--group", "search_id"]
FAST = ["--n-estimators", "4", "--max-depth", "3", "--quiet", "--bootstrap", "0", "--no-sweep", "--no-plots"]


@pytest.fixture(scope="module")
def own_log(tmp_path_factory):
    """A log in its own names: bool clicks, text and integer features, NaN prices; one CSV file and a folder of
    Parquet files whose groups are scattered across the files (rows shuffled)."""
    d = tmp_path_factory.mktemp("own_log")
    sim = make_ad_log(300, ctr=0.1, cvr=0.2, n_categorical=2, n_numerical=3, random_state=1).to_frame()
    frame = pd.DataFrame(
        {
            "search_id": sim["search_id"].to_numpy(),
            "clicked": sim["click"].astype(bool).to_numpy(),
            "booked": sim["conversion"].to_numpy(),
            "city": "c" + sim["categorical_1"].astype(str).to_numpy(),
            "stars": sim["categorical_2"].astype(int).to_numpy(),
            "w": 1.0 + (sim["numerical_1"] > 0).to_numpy(),
            **{f"price_{k}": sim[f"numerical_{k}"].to_numpy() for k in (1, 2, 3)},
        }
    )
    frame.loc[frame.index[::13], "price_2"] = np.nan
    frame.to_csv(d / "log.csv", index=False)
    folder = d / "pq"
    folder.mkdir()
    shuffled = frame.sample(frac=1.0, random_state=0)
    for k, rows in enumerate(np.array_split(np.arange(len(shuffled)), 3)):
        shuffled.iloc[rows].to_parquet(folder / f"part-{k}.parquet", index=False)
    return d


def _run(data, out, *extra):
    return main(["compare", "--data", str(data), *FAST, "--out", str(out), *extra])


def test_own_columns_from_csv_and_scattered_parquet(own_log, tmp_path, capsys):
    assert _run(own_log / "log.csv", tmp_path / "csv", *COLUMNS) == 0
    captured = capsys.readouterr()
    assert "columns ['city'] read as categorical" in captured.err  # the inferred categorical, noted
    assert "clicked" in captured.out.splitlines()[0] and "| CTCVR AUC" in captured.out
    assert _run(own_log / "pq", tmp_path / "pq", *COLUMNS) == 0
    csv = json.loads((tmp_path / "csv" / "results.json").read_text())
    pq = json.loads((tmp_path / "pq" / "results.json").read_text())
    assert csv["data"]["rows"] == pq["data"]["rows"] and csv["data"]["groups"] == pq["data"]["groups"] == 300
    assert csv["models"] == ["BCE", "PWiseR (λ=1)", "weighted BCE (α=1)"]


def test_features_categorical_and_weight(own_log, tmp_path, capsys):
    assert (
        _run(
            own_log / "log.csv",
            tmp_path,
            *COLUMNS,
            "--weight",
            "w",
            "--features",
            "city,stars,price_1",
            "--categorical",
            "city,stars",
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "read as categorical" not in captured.err  # an explicit --categorical wins, nothing inferred
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["settings"]["features"] == ["city", "stars", "price_1"] and res["settings"]["weight"] == "w"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--click", "clickd", "--conversion", "booked", "--group", "search_id"], "'clickd'"),
        (["--click", "clicked", "--conversion", "booked", "--group", "searchid"], "'searchid'"),
        ([*COLUMNS, "--features", "city,prize_1"], "'prize_1'"),
        ([*COLUMNS, "--categorical", "stras"], "'stras'"),
        ([*COLUMNS, "--weight", "weight"], "'weight'"),
    ],
)
@pytest.mark.parametrize("source", ["log.csv", "pq"])
def test_a_misspelt_column_exits_2_naming_it(own_log, tmp_path, capsys, extra, message, source):
    assert _run(own_log / source, tmp_path, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("gbdt-pwiser: error:") and message in err and err.count("\n") == 1, err


def test_a_misspelt_column_names_the_closest_one(own_log, tmp_path, capsys):
    assert (
        _run(own_log / "log.csv", tmp_path, "--click", "clickd", "--conversion", "booked", "--group", "search_id") == 2
    )
    assert "'clicked'" in capsys.readouterr().err


def test_own_columns_with_evidence(own_log, tmp_path):
    assert (
        _run(
            own_log / "pq",
            tmp_path,
            *COLUMNS,
            "--methods",
            "pwiser,weighted",
            "--sweep-lam",
            "0,1",
            "--sweep-alpha",
            "0,2",
        )
        == 0
    )
    ev = json.loads((tmp_path / "results.json").read_text())["evidence"]
    assert ev["methods"] == ["pwiser", "weighted"]
    assert [p["value"] for pts in ev["curves"].values() for p in pts] == [0.0, 1.0, 0.0, 2.0]


def test_a_misspelt_column_with_evidence_exits_2(own_log, tmp_path, capsys):
    assert (
        _run(
            own_log / "log.csv",
            tmp_path,
            "--click",
            "clickd",
            "--conversion",
            "booked",
            "--group",
            "search_id",
            "--evidence",
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "'clickd'" in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--format", "aliexpress", *COLUMNS], "--format names one of the paper's layouts"),
        (["--click", "clicked", "--conversion", "booked"], "--group missing"),
        (["--group", "search_id"], "--click, --conversion missing"),
    ],
)
def test_column_option_mistakes_are_one_line(own_log, tmp_path, capsys, extra, message):
    assert _run(own_log / "log.csv", tmp_path, *extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_columns_without_data_are_a_user_error(tmp_path, capsys):
    assert main(["compare", *COLUMNS, *FAST, "--out", str(tmp_path)]) == 2
    assert "give --data" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--conversion-weight", "-1"], "argument --conversion-weight: must be a finite number >= 0, got -1.0"),
        (["--conversion-weight", "x"], "argument --conversion-weight: expected a number, got 'x'"),
        (["--calibration", "platt"], "argument --calibration: invalid choice: 'platt'"),
        (["--features", "a,a"], "argument --features: columns ['a'] are listed more than once"),
    ],
)
def test_bad_new_option_values_are_rejected_by_the_parser(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_conversion_weight_and_calibration_in_the_main_job(tmp_path, capsys):
    assert (
        main(
            [
                "compare",
                "--requests",
                "400",
                "--sim-ctr",
                "0.1",
                *FAST,
                "--conversion-weight",
                "3",
                "--calibration",
                "isotonic",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["models"] == ["BCE", "PWiseR (λ=1)", "weighted BCE (α=3)"]
    assert res["results"]["weighted BCE (α=3)"]["conversion_weight"] == 3.0
    assert res["settings"]["calibration"] == "isotonic" and "calibration=isotonic" in out
    for r in res["results"].values():  # isotonic maps fitted on held-out training groups: near 1 on the test part
        assert 0.5 < r["ctr_ratio"] < 1.5


def test_conversion_weight_zero_is_the_bce_chain_once(tmp_path):
    assert main(["compare", "--requests", "300", *FAST, "--conversion-weight", "0", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["models"] == ["BCE", "PWiseR (λ=1)"]


@pytest.mark.parametrize("source", ["log.csv", "pq"])
def test_own_columns_on_dask(own_log, tmp_path, source):
    pytest.importorskip("distributed")
    pytest.importorskip("xgboost.dask")
    assert _run(own_log / source, tmp_path, *COLUMNS, "--dask-workers", "2") == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["data"]["groups"] == 300 and 0 < res["data"]["test_rows"] < res["data"]["rows"]


def test_a_misspelt_column_on_dask_exits_2_before_a_cluster_starts(own_log, tmp_path, capfd, monkeypatch):
    pytest.importorskip("distributed")

    def no_cluster(args):
        raise AssertionError("a cluster was started for a log with a misspelt column")

    monkeypatch.setattr("gbdt_pwiser.cli.compare.dask_client", no_cluster)
    assert (
        _run(
            own_log / "pq",
            tmp_path,
            "--click",
            "clickd",
            "--conversion",
            "booked",
            "--group",
            "search_id",
            "--dask-workers",
            "1",
        )
        == 2
    )
    err = capfd.readouterr().err
    assert "'clickd'" in err and err.strip().count("\n") == 0, err
