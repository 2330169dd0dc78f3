"""Out-of-core ``CTCVRClassifier.fit(ParquetLog(...))`` vs the in-memory fit: peak memory, time, AUC.

Writes a simulated log as Parquet shards one shard at a time (the parent never
holds it whole), then fits the chained XGBoost model in fresh processes:

* **out of core**: ``CTCVRClassifier().fit(ParquetLog(folder, ...))``;
* **in memory**: the same shards read into one DataFrame, ``fit(X, y, group=...)``
  (same parameters), skipped with ``--no-in-memory``.

Each child reports its peak resident memory (``VmHWM``), the peak of its
anonymous memory (``RssAnon``, sampled every 20 ms: file-backed pages of the
mmapped page cache count in ``VmHWM`` but the kernel can drop them), its
resident memory after the imports and before the fit, the fit's wall time and
the CTR/CTCVR AUC on held-out requests. The out-of-core child also reports the
objective's per-row state (:class:`gbdt_pwiser.datasets.parquet_log.LogState` plus the
PWiseR objective's prepared data). The figure the issue asks for is the ratio
of the features' in-memory size (float32, what XGBoost itself converts to) to
the out-of-core fit's peak memory: "a log N× larger than the memory the fit
used". No memory limit is imposed (no writable cgroup here, and ``RLIMIT_AS``
trips over Numba's and XGBoost's virtual reservations); the peaks are measured.

Usage::

    python benchmarks/bench_external.py [--rows 1000000] [--features 100] [--rounds 5] [--shard-rows 50000] [--smoke]

Writes ``benchmarks/results/external.json`` and ``external.md`` (not with
``--smoke``). Timings on a shared machine are labelled "loaded".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, make_data, run_python, write_result

CHILD = r"""
import json, os, threading, time, glob
import numpy as np, pandas as pd
from common import proc_status_mib as status

peak = {{"anon": 0.0}}
def sample():
    while True:
        peak["anon"] = max(peak["anon"], status("RssAnon"))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
from gbdt_pwiser import CTCVRClassifier, ParquetLog
from gbdt_pwiser.metrics import conversion_auc
from gbdt_pwiser.objectives import prepare_data
folder, variant, feats = {folder!r}, {variant!r}, {feats!r}
params = {params!r}
test = pd.read_parquet({test!r})
_ = CTCVRClassifier(n_estimators=1, n_jobs=1).fit(test[feats].iloc[:2000], test["y"].iloc[:2000],
                                                  group=test["g"].iloc[:2000])  # compile the kernels first
before = status("VmRSS")
out = {{"variant": variant, "rss_before_fit_mib": before}}
t = time.perf_counter()
if variant == "external":
    log = ParquetLog(folder, label="y", group="g", features=feats, cache_dir={cache!r})
    model = CTCVRClassifier(**params).fit(log)
else:
    files = sorted(glob.glob(folder + "/*.parquet"))
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    model = CTCVRClassifier(**params).fit(df[feats], df["y"], group=df["g"])
    del df
out["fit_s"] = time.perf_counter() - t
out["peak_rss_mib"] = status("VmHWM")
out["peak_anon_mib"] = peak["anon"]
yt = test["y"].to_numpy()
out["auc_ctcvr"] = model.score(test[feats], yt)
out["auc_ctr_click"] = conversion_auc(model.predict_ctr(test[feats]), 2 * (yt >= 1))
if variant == "external":
    st = log.read_state()
    n = st.y.size
    prep = prepare_data(st.y, group_ptr=np.concatenate([[0], np.cumsum(st.sizes)]))
    arrays = [v for v in vars(prep).values() if isinstance(v, np.ndarray)]
    out["rows"] = int(n)
    out["state_bytes_per_row"] = {{
        "labels_int8": st.y.nbytes / n,
        "group_sizes_int64": st.sizes.nbytes / n,
        "weights_float64": 0.0 if st.weight is None else st.weight.nbytes / n,
        "objective_prepared": sum(a.nbytes for a in arrays) / n,
        "gradient_and_hessian_float64": 16.0,
    }}
print(json.dumps(out))
"""


def write_log(folder: Path, n_rows: int, n_features: int, shard_rows: int, seed: int = 0) -> dict:
    """Shards of ``shard_rows`` rows (whole groups, disjoint ids), written one at a time; returns sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    feats = [f"f{i}" for i in range(n_features)]
    written, offset, k = 0, 0, 0
    while written < n_rows:
        X, y, g = make_data(min(shard_rows, n_rows - written), n_features, seed=seed + k)
        # drop the last (possibly cut) group so every group stays whole in its shard
        keep = g != g[-1] if np.unique(g).size > 1 else np.ones(g.size, bool)
        df = pd.DataFrame(X[keep], columns=feats).assign(y=y[keep].astype(np.int8), g=g[keep] + offset)
        df.to_parquet(folder / f"part-{k:04d}.parquet", index=False)
        written += int(keep.sum())
        offset = int(df["g"].max()) + 1
        k += 1
    return {
        "rows": written,
        "shards": k,
        "features": feats,
        "parquet_mib": sum(f.stat().st_size for f in folder.glob("*.parquet")) / 2**20,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shard-rows", type=int, default=50_000)
    ap.add_argument("--cvr-space", default="clicked", choices=["clicked", "entire"])
    ap.add_argument("--no-in-memory", action="store_true", help="skip the in-memory fit")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.rows, a.features, a.rounds, a.shard_rows = 6000, 5, 2, 2000
    params = {
        "n_estimators": a.rounds,
        "max_depth": 6,
        "learning_rate": 0.1,
        "lam": 1.0,
        "n_jobs": 2,
        "cvr_space": a.cvr_space,
    }
    with tempfile.TemporaryDirectory(prefix="bench-external-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        info = write_log(tmp / "log", a.rows, a.features, a.shard_rows)
        Xt, yt, gt = make_data(max(2000, a.rows // 10), a.features, seed=10_000)
        pd.DataFrame(Xt, columns=info["features"]).assign(y=yt.astype(np.int8), g=gt).to_parquet(tmp / "test.parquet")
        write_s = time.perf_counter() - t
        runs = {}
        for variant in ("external",) if a.no_in_memory else ("external", "in_memory"):
            code = CHILD.format(
                folder=str(tmp / "log"),
                variant=variant,
                feats=info["features"],
                params=params,
                test=str(tmp / "test.parquet"),
                cache=str(tmp),
            )
            env = {
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")) if p
                )
            }
            runs[variant] = json.loads(run_python(code, env=env, timeout=3000).strip().splitlines()[-1])
    features_mib = info["rows"] * a.features * 4 / 2**20
    ext = runs["external"]
    out = {
        "rows": info["rows"],
        "features": a.features,
        "shards": info["shards"],
        "rounds": a.rounds,
        "cvr_space": a.cvr_space,
        "max_depth": 6,
        "threads": 2,
        "parquet_mib": info["parquet_mib"],
        "features_float32_mib": features_mib,
        "write_s": write_s,
        "runs": runs,
        "log_over_peak_rss": features_mib / ext["peak_rss_mib"],
        "log_over_peak_anon": features_mib / ext["peak_anon_mib"],
        "loaded": os.getloadavg()[0] > 1.5,
        "command": "python benchmarks/bench_external.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    if not a.smoke:
        write_result("external", out)
        (RESULTS / "external.md").write_text(markdown(out))
    return out


def markdown(r: dict) -> str:
    load = " (loaded machine: timings indicative only)" if r["loaded"] else ""
    lines = [
        f"# Out-of-core fit vs in-memory fit{load}",
        "",
        f"{r['rows']:,} rows x {r['features']} float32 features in {r['shards']} Parquet shards "
        f"({r['parquet_mib']:.0f} MiB on disk, {r['features_float32_mib']:.0f} MiB as float32 in memory); "
        f"groups of ~25; {r['rounds']} rounds per booster, depth 6, 2 threads, cvr_space={r['cvr_space']!r}. "
        f"Fresh process per fit; memory in MiB. Command: `{r.get('command', '')}`.",
        "",
        "| fit | wall (s) | peak RSS (VmHWM) | peak anonymous RSS | RSS before fit | CTCVR AUC | CTR AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in r["runs"].items():
        lines.append(
            f"| {name} | {v['fit_s']:.1f}{' (loaded)' if r['loaded'] else ''} | {v['peak_rss_mib']:.0f} "
            f"| {v['peak_anon_mib']:.0f} | {v['rss_before_fit_mib']:.0f} | {v['auc_ctcvr']:.4f} "
            f"| {v['auc_ctr_click']:.4f} |"
        )
    st = r["runs"]["external"]["state_bytes_per_row"]
    ext = r["runs"]["external"]
    lines += [
        "",
        f"Memory the out-of-core fit added (peak RSS - RSS before the fit): "
        f"{ext['peak_rss_mib'] - ext['rss_before_fit_mib']:.0f} MiB.",
    ]
    if "in_memory" in r["runs"]:
        mem = r["runs"]["in_memory"]
        lines += [
            "",
            f"AUC difference, out of core - in memory: CTCVR {ext['auc_ctcvr'] - mem['auc_ctcvr']:.2e}, "
            f"CTR {ext['auc_ctr_click'] - mem['auc_ctr_click']:.2e}; in-memory peak RSS / out-of-core "
            f"peak RSS: {mem['peak_rss_mib'] / ext['peak_rss_mib']:.1f}x.",
        ]
    lines += [
        "",
        f"The features (float32) are {r['log_over_peak_rss']:.1f}x the out-of-core fit's peak RSS and "
        f"{r['log_over_peak_anon']:.1f}x its peak anonymous memory.",
        "",
        "Per-row state held in memory by the out-of-core fit (bytes per row): "
        + ", ".join(f"{k} {v:.2f}" for k, v in st.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    res = main()
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}, indent=1, default=float))
    print(json.dumps(res["runs"], indent=1, default=float))
