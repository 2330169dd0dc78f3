"""Shared helpers of the benchmarks: data, timing, machine description, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: where the benchmarks write their results (``$BENCH_RESULTS`` for a run elsewhere, e.g. ``$OUT`` on a
#: borrowed machine)
RESULTS = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).resolve().parent / "results")
#: the documentation pages whose result blocks the benchmarks rewrite
DOCS = Path(__file__).resolve().parents[1] / "docs"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import importlib.metadata

    import numba

    def version(dist: str) -> str | None:  # a booster the run does not use may be absent (the GPU machine)
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "xgboost": version("xgboost"),
        "lightgbm": version("lightgbm"),
        "numba_threading_layer": _threading_layer(),
    }


def _threading_layer() -> str:
    try:
        import numba

        @numba.njit(parallel=True)
        def f(n):
            s = 0
            for i in numba.prange(n):
                s += i
            return s

        f(10)
        return numba.threading_layer()
    except Exception as exc:  # pragma: no cover - informational only
        return f"unknown ({exc})"


def make_data(n_rows: int, n_features: int = 30, group_size: float = 25.0, seed: int = 0):
    """Float32 features and funnel labels with the simulator's realistic rates, groups of ~group_size.

    Rows come sorted by group (as XGBoost's qid and LightGBM's group sizes need).
    """
    from gbdt_pwiser.datasets import make_ad_log

    n_req = max(1, round(n_rows / group_size))
    log = make_ad_log(n_req, mean_request_size=group_size, random_state=seed, with_truth=False)
    y = log.y[:n_rows]
    group = log.group[:n_rows]
    n = y.size
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features), dtype=np.float32)
    # make a few features informative so trees have structure to find
    X[:, :3] += (y[:, None] >= 1) * 0.8 + (y[:, None] == 2) * 0.8
    order = np.argsort(group, kind="stable")
    return X[order], y[order], group[order]


#: The two label regimes of the benchmarks: (click rate, conversion rate among clicks)
REGIMES = {"sparse": (0.025, 0.025), "dense": (0.10, 0.20)}


def make_regime_data(n_rows: int, n_features: int, regime: str, group_size: int = 25, seed: int = 0):
    """Float32 features, funnel labels at a regime's rates, contiguous groups of ``group_size`` rows."""
    ctr, cvr = REGIMES[regime]
    rng = np.random.default_rng(seed)
    click = rng.random(n_rows) < ctr
    conv = click & (rng.random(n_rows) < cvr)
    y = (click.astype(np.int8) + conv.astype(np.int8)).astype(np.int8)
    X = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    X[:, :3] += (y[:, None] >= 1) * 0.8 + (y[:, None] == 2) * 0.8  # a few informative features
    return X, y, np.arange(n_rows, dtype=np.int64) // group_size


def load_average() -> float | None:
    """The 1-minute load average (``/proc/loadavg``), None where there is none."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def condition(before: float | None, after: float | None, cores: int | None = None) -> str:
    """ "loaded" when the load average before or after a run exceeded the core count of the machine
    it ran on (``cores``, default this one's): more runnable work than cores, the benchmark's own
    threads included; else "quiet"."""
    return "loaded" if max(before or 0.0, after or 0.0) > (cores or os.cpu_count() or 1) else "quiet"


def timeit(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=float))
    return path


def proc_status_mib(key: str = "VmHWM") -> float:
    """A memory figure of this process from ``/proc/self/status``, in MiB: the one peak-memory reader.

    ``VmHWM`` (the default) is the peak resident set: per address space, it
    starts afresh at ``exec`` (``ru_maxrss`` would carry a parent's high-water
    mark over fork + exec, and is the fallback where ``/proc`` is missing);
    ``VmRSS`` and ``RssAnon`` are the current resident and anonymous sets.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if key != "VmHWM":
        return float("nan")
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_python(code: str, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    """Run code in a fresh interpreter and return its stdout (raises on failure).

    The benchmarks folder is on the child's path, so ``from common import ...`` works there.
    """
    child = {**os.environ, **(env or {})}
    here = str(Path(__file__).resolve().parent)
    child["PYTHONPATH"] = os.pathsep.join([here] + [p for p in (child.get("PYTHONPATH", ""),) if p])
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=child)
    if res.returncode != 0:
        raise RuntimeError(f"subprocess failed:\n{res.stderr}")
    return res.stdout


def write_between(path: Path, begin: str, end: str, body: str) -> None:
    """Replace what lies between the markers ``begin`` and ``end`` of ``path`` by ``body``.

    ``body`` is whole lines (it ends with a newline); it starts on the line after ``begin``.
    """
    text = path.read_text()
    if begin not in text or end not in text:
        raise ValueError(f"{path} lacks the markers {begin!r} ... {end!r} that delimit the block to rewrite")
    start, stop = text.index(begin) + len(begin), text.index(end)
    path.write_text(text[:start] + "\n" + body + text[stop:])
