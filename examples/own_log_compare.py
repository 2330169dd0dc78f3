"""
Your own log, in its own column names
=====================================

Load a log in its own column names, compare BCE, PWiseR and conversion-weighted BCE, plot.

The script first writes a log the way a team's export might look (a folder of
Parquet files, or one CSV file with ``--csv``): a search id, a click and a
booking column, text and numeric features with missing values. Then it is
what you would run on your own log:

1. :func:`gbdt_pwiser.datasets.load_log` names the roles of the columns
   (every other column is a feature; text columns become categoricals, which
   an :class:`~gbdt_pwiser.datasets.InferredCategoricalWarning` reports).
2. :func:`gbdt_pwiser.compare` splits the log by search id, fits the three
   models and returns one row per model: AUCs, calibration (predicted /
   observed, ECE) and each difference to BCE with its paired bootstrap
   interval over test groups.
3. ``plots=`` writes ``roc.png`` and ``calibration.png`` (a reliability plot).

The command line does the same::

    gbdt-pwiser compare --data hotel_log --click clicked --conversion booked --group search_id

Run::

    python examples/own_log_compare.py              # ~100k rows, about a minute
    python examples/own_log_compare.py --small      # seconds
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import gbdt_pwiser
from gbdt_pwiser.datasets import InferredCategoricalWarning, load_log, make_ad_log


def write_export(folder: Path, n_requests: int, csv: bool) -> Path:
    """A simulated log renamed as a team's export: its own column names, text categories, NaN features."""
    sim = make_ad_log(n_requests, ctr=0.05, cvr=0.2, n_categorical=2, n_numerical=4, random_state=0).to_frame()
    frame = pd.DataFrame(
        {
            "search_id": sim["search_id"].to_numpy(),
            "clicked": sim["click"].astype(bool).to_numpy(),
            "booked": sim["conversion"].to_numpy(),
            "city": "city_" + sim["categorical_1"].astype(str).to_numpy(),
            "stars": sim["categorical_2"].astype(int).to_numpy(),
            **{f"price_{k}": sim[f"numerical_{k}"].to_numpy() for k in range(1, 5)},
        }
    )
    frame.loc[frame.index[::17], "price_2"] = np.nan  # missing values stay missing
    if csv:
        frame.to_csv(folder / "hotel_log.csv", index=False)
        return folder / "hotel_log.csv"
    out = folder / "hotel_log"
    out.mkdir()
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[rows].to_parquet(out / f"part-{k}.parquet", index=False)
    return out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description="Your own log: load_log, then compare BCE, PWiseR and weighted BCE.")
    ap.add_argument("--small", action="store_true", help="a tiny log and few trees (for tests)")
    ap.add_argument("--csv", action="store_true", help="write and read one CSV file instead of Parquet files")
    ap.add_argument("--out", type=Path, default=Path("own_log_out"), help="folder of the plots")
    args = ap.parse_args(argv)
    n_requests, n_estimators, bootstrap = (400, 10, 50) if args.small else (4000, 60, 200)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_export(Path(tmp), n_requests, args.csv)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InferredCategoricalWarning)
            log = load_log(path, click="clicked", conversion="booked", group="search_id")
        for w in caught:
            print(f"note: {w.message}")
    print(f"loaded {log}")
    table = gbdt_pwiser.compare(
        log,
        ["bce", "pwiser", "weighted"],
        seeds=[0],
        bootstrap=bootstrap,
        params={"n_estimators": n_estimators, "n_jobs": 2},
        plots=args.out,
    )
    cols = [
        "model",
        "ctr_auc",
        "ctr_conv_auc",
        "ctcvr_auc",
        "ctr_ratio",
        "ctcvr_ratio",
        "ctcvr_ece",
        "ctr_conv_auc_delta",
        "ctr_conv_auc_low",
        "ctr_conv_auc_high",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[cols].round(4).to_string(index=False))
    print(f"wrote {args.out / 'roc.png'}, {args.out / 'calibration.png'}")
    return table


if __name__ == "__main__":
    main()
