"""Start-up: the first ``grad_hess`` in a fresh process, with a cold and a warm Numba cache.

Cold: an empty ``NUMBA_CACHE_DIR`` (every kernel compiles). Warm: the same
folder again, filled by the cold run (kernels load from the cache). Import
time is reported separately. Writes ``results/startup.json``.

    python benchmarks/bench_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_python, write_result  # noqa: E402

CODE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from gbdt_pwiser import PWiseRObjective
t1 = time.perf_counter()
rng = np.random.default_rng(0)
n = 100_000
y = rng.choice([0, 1, 2], n, p=[0.95, 0.04, 0.01]).astype(np.int8)
g = np.repeat(np.arange(n // 25), 25)
z = rng.normal(size=n).astype(np.float32)
t2 = time.perf_counter()
PWiseRObjective().grad_hess(z, y, group=g)
t3 = time.perf_counter()
PWiseRObjective().grad_hess(z, y, group=g)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_call_s": t3 - t2, "second_call_s": t4 - t3}))
"""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    if a.smoke:
        a.repeat = 1
    runs = {"cold": [], "warm": []}
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory() as cache:
            env = {"NUMBA_CACHE_DIR": cache}
            runs["cold"].append(json.loads(run_python(CODE, env).strip().splitlines()[-1]))
            runs["warm"].append(json.loads(run_python(CODE, env).strip().splitlines()[-1]))
    summary = {k: {m: min(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    for k, v in summary.items():
        print(f"{k} cache: import {v['import_s']:.2f} s, first grad_hess {v['first_call_s']:.2f} s, "
              f"second {v['second_call_s']*1e3:.1f} ms", flush=True)
    out = {"runs": runs, "best": summary}
    if not a.smoke:
        write_result("startup", out)
    return out


if __name__ == "__main__":
    main()
