"""DaskCTCVRClassifier on a 2-worker LocalCluster vs CTCVRClassifier, and the out-of-core XGBoost fit.

Measures, on one simulated log (groups scattered over the rows, so the Dask fit
repartitions them):

* wall time of the Dask fit (2 process workers x 1 thread, XGBoost) and of the
  single-process fit (2 threads), and the CTCVR/CTR AUC of both on held-out groups;
* peak memory (VmHWM) of each Dask worker process;
* peak RSS of a fresh process training the CTR booster with
  ``external_dmatrix`` over Parquet shards vs one training it from the same data
  in memory.

Usage::

    python benchmarks/bench_dask.py [--rows 4000000] [--rounds 50] [--smoke]

Writes ``benchmarks/results/dask.json`` and ``dask.md`` (not with ``--smoke``).
Figures from a shared, loaded machine are labelled as such in the output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, make_data, run_python, write_result

OOC = r"""
import json, glob
import numpy as np, pandas as pd, xgboost as xgb
from gbdt_pwiser import PWiseRObjective, initial_margin
from common import proc_status_mib as hwm
from gbdt_pwiser.engines.external import external_dmatrix
files = sorted(glob.glob("{folder}/*.parquet"))
feats = [c for c in pd.read_parquet(files[0]).columns if c.startswith("f")]
m0 = {m0!r}
params = {{"tree_method": "hist", "max_depth": 6, "eta": 0.1, "nthread": 2, "seed": 0, "max_bin": 256,
          "base_score": m0, "disable_default_eval_metric": 1}}
if {variant!r} == "external":
    d = external_dmatrix(files, label="y", group="g", features=feats, max_bin=256)
else:
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    d = xgb.QuantileDMatrix(df[feats].to_numpy(np.float32), label=df["y"].to_numpy(np.float32),
                            qid=df["g"].to_numpy(), max_bin=256)
    del df
xgb.train(params, d, {rounds}, obj=PWiseRObjective(lam=1.0))
print(json.dumps({{"peak_rss_mib": hwm()}}))
"""


def _worker_hwm() -> float:
    from common import proc_status_mib

    return proc_status_mib("VmHWM")


def _split(df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    groups = df["g"].unique()
    test = np.random.default_rng(seed).choice(groups, size=max(1, groups.size // 5), replace=False)
    mask = df["g"].isin(test)
    return df[~mask].reset_index(drop=True), df[mask].reset_index(drop=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.rows, a.rounds, a.partitions = 4000, 3, 4
    import dask.dataframe as dd
    import distributed

    from gbdt_pwiser import CTCVRClassifier, initial_margin
    from gbdt_pwiser.dask import DaskCTCVRClassifier
    from gbdt_pwiser.metrics import conversion_auc

    X, y, g = make_data(a.rows, 20)
    feats = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=feats).assign(y=y.astype(np.int8), g=g)
    del X
    train, test = _split(df, 0)
    del df
    params = {"n_estimators": a.rounds, "max_depth": 6, "learning_rate": 0.1, "lam": 1.0}
    yt = test["y"].to_numpy()

    t = time.perf_counter()
    local = CTCVRClassifier(n_jobs=2, **params).fit(train[feats], train["y"], group=train["g"])
    local_s = time.perf_counter() - t

    scattered = train.sample(frac=1.0, random_state=0).reset_index(drop=True)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ddf = dd.from_pandas(scattered, npartitions=a.partitions, sort=False)
        ddf = client.persist(ddf)
        distributed.wait(ddf)
        base = client.run(_worker_hwm)
        t = time.perf_counter()
        model = DaskCTCVRClassifier(n_jobs=1, **params)
        model.client = client
        model = model.fit(ddf[feats], ddf["y"], group=ddf["g"])
        dask_s = time.perf_counter() - t
        peaks = client.run(_worker_hwm)
    auc = {
        "local": {
            "ctcvr": local.score(test[feats], yt),
            "ctr": conversion_auc(local.predict_ctr(test[feats]), 2 * (yt >= 1)),
        },
        "dask": {
            "ctcvr": model.score(test[feats], yt),
            "ctr": conversion_auc(model.predict_ctr(test[feats]), 2 * (yt >= 1)),
        },
    }

    ooc = {}
    with tempfile.TemporaryDirectory() as folder:
        # shards of whole groups, sorted by group (train is sorted by group: make_data's order)
        cuts = np.linspace(0, len(train), 9).astype(int)
        gv = train["g"].to_numpy()
        for k in range(8):
            lo, hi = cuts[k], cuts[k + 1]
            while 0 < lo < len(gv) and gv[lo] == gv[lo - 1]:
                lo += 1
            while 0 < hi < len(gv) and gv[hi] == gv[hi - 1]:
                hi += 1
            train.iloc[lo:hi].to_parquet(f"{folder}/part-{k:02d}.parquet")
        m0 = initial_margin(train["y"].to_numpy())
        for variant in ("external", "in_memory"):
            out = run_python(OOC.format(folder=folder, m0=m0, rounds=a.rounds, variant=variant))
            ooc[variant] = json.loads(out.strip().splitlines()[-1])["peak_rss_mib"]

    out = {
        "note": "2-core machine shared with other jobs: wall times are indicative only",
        "rows": int(len(train) + len(test)),
        "train_rows": len(train),
        "rounds": a.rounds,
        "partitions": a.partitions,
        "fit_s": {"local_2_threads": local_s, "dask_2x1": dask_s},
        "worker_peak_rss_mib": {str(k): v for k, v in peaks.items()},
        "worker_rss_before_fit_mib": {str(k): v for k, v in base.items()},
        "auc": auc,
        "auc_diff_ctcvr": auc["dask"]["ctcvr"] - auc["local"]["ctcvr"],
        "ctr_booster_peak_rss_mib": ooc,
        "cpu_count": os.cpu_count(),
    }
    print(
        f"rows {out['rows']}: fit local {local_s:.1f} s, dask {dask_s:.1f} s; CTCVR AUC local "
        f"{auc['local']['ctcvr']:.4f}, dask {auc['dask']['ctcvr']:.4f}; worker peaks "
        f"{', '.join(f'{v:.0f}' for v in peaks.values())} MiB; CTR booster peak RSS external "
        f"{ooc['external']:.0f} MiB vs in memory {ooc['in_memory']:.0f} MiB",
        flush=True,
    )
    if not a.smoke:
        write_result("dask", out)
        lines = [
            "# Dask and out-of-core benchmark",
            "",
            f"_{out['note']}._",
            "",
            f"{out['rows']} rows, {a.rounds} rounds, {a.partitions} partitions, XGBoost.",
            "",
            "| | local (2 threads) | Dask (2 workers x 1 thread) |",
            "|---|---|---|",
            f"| fit wall time (s) | {local_s:.1f} | {dask_s:.1f} |",
            f"| CTCVR AUC | {auc['local']['ctcvr']:.4f} | {auc['dask']['ctcvr']:.4f} |",
            f"| CTR AUC | {auc['local']['ctr']:.4f} | {auc['dask']['ctr']:.4f} |",
            "",
            "Worker peak RSS (MiB): " + ", ".join(f"{v:.0f}" for v in peaks.values()),
            "",
            f"CTR booster alone, fresh process: external memory {ooc['external']:.0f} MiB peak RSS, "
            f"in memory {ooc['in_memory']:.0f} MiB.",
            "",
        ]
        (RESULTS / "dask.md").write_text("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
