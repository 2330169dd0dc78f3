"""CUDA kernels of ``PWiseRObjective(device="cuda")`` against the CPU kernels.

Run in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no GPU needed) or on
a real GPU. Sizes stay tiny: the simulator runs every CUDA thread as a Python
thread. Blocks are 32 threads (the ``small_blocks`` fixture) so inputs span
several blocks; ``SERIAL_MAX_ROWS=4`` sends every group above 4 rows through
the row-parallel ("large group") kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gbdt_pwiser import EntireSpaceCVRObjective, PWiseRObjective, prepare_data
from gbdt_pwiser.kernels import cpu as K
from gbdt_pwiser.kernels import cuda as kc
from gbdt_pwiser.objectives import _cuda as gpu

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
CUDA_OK, CUDA_WHY = kc.cuda_status()
needs_cuda = pytest.mark.skipif(
    not CUDA_OK, reason=f"no CUDA simulator or GPU (run with NUMBA_ENABLE_CUDASIM=1): {CUDA_WHY}"
)
pytestmark = pytest.mark.cudasim

LOSSES = ("squared_hinge", "logistic")


@pytest.fixture(autouse=True)
def small_blocks():
    """Small CUDA blocks (32 threads) so that small inputs span several blocks."""
    old = gpu.BLOCK_SIZE, gpu.SERIAL_MAX_ROWS
    gpu.BLOCK_SIZE = 32
    yield
    gpu.BLOCK_SIZE, gpu.SERIAL_MAX_ROWS = old


PATHS = {"serial": None, "rowparallel": 4}


# --------------------------------------------------------------------------- helpers


def make_data(
    seed: int,
    n_groups: int = 10,
    size: tuple[int, int] = (1, 18),
    conv: float = 0.2,
    click: float = 0.3,
    ties: bool = True,
):
    """Funnel labels in random-size groups with unsorted string ids, margins with ties, weights."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(size[0], size[1] + 1, n_groups)
    gid = np.repeat(np.arange(n_groups), sizes)
    n = gid.size
    u = rng.random(n)
    y = np.where(u < conv, 2, np.where(u < conv + click, 1, 0)).astype(np.int8)
    z = rng.normal(-0.5, 1.5, n)
    if ties:  # equal probabilities exercise the stability of the conversion sort
        z[rng.random(n) < 0.3] = 0.25
    w = rng.uniform(0.2, 3.0, n)
    perm = rng.permutation(n)
    group = np.array([f"q{v * 7919 % 1009}" for v in gid[perm]])
    return z[perm], y[perm], group, w[perm]


def host(pair) -> tuple[np.ndarray, np.ndarray]:
    return pair[0].copy_to_host(), pair[1].copy_to_host()


def assert_matches(dev, cpu, exact: bool = False) -> None:
    """GPU == CPU to rtol 1e-9; with ``exact``, bit for bit in the simulator.

    The one-thread-per-group kernels accumulate in the CPU's order, and the
    simulator runs the device code with Python floats (no FMA contraction, the
    same exp polynomial), so there they must agree exactly. On a GPU, FMA
    contraction changes the last bits; the row-parallel kernels add the partners
    of large groups with atomics in any order.
    """
    g, h = host(dev)
    gc, hc = cpu
    assert g.dtype == np.float64 and h.dtype == np.float64
    assert g.shape == gc.shape and h.shape == hc.shape
    scale = max(1.0, float(np.max(np.abs(gc), initial=0.0)), float(np.max(np.abs(hc), initial=0.0)))
    np.testing.assert_allclose(g, gc, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(h, hc, rtol=1e-9, atol=1e-12 * scale)
    assert np.all(h >= 1e-16)
    if exact and SIMULATOR:
        np.testing.assert_array_equal(g, gc)
        np.testing.assert_array_equal(h, hc)


def both(kw: dict, z, y, group=None, weight=None, iteration: int = 0):
    cpu = PWiseRObjective(**kw).grad_hess(z, y, group, weight, iteration=iteration)
    dev = PWiseRObjective(device="cuda", **kw).grad_hess(z, y, group, weight, iteration=iteration)
    return dev, cpu


# --------------------------------------------------------------------------- equality with the CPU


@needs_cuda
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("pairs", ["all", 2])
@pytest.mark.parametrize("pair_loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("grouped", [True, False])
def test_matches_cpu(path, pairs, pair_loss, weighted, grouped):
    gpu.SERIAL_MAX_ROWS = PATHS[path]
    z, y, group, w = make_data(zlib.crc32(repr((path, pairs, pair_loss, weighted, grouped)).encode()) % 1000)
    kw = dict(pair_loss=pair_loss, pairs=pairs, lam=1.5, random_state=7)
    dev, cpu = both(kw, z, y, group if grouped else None, w if weighted else None, iteration=3)
    assert_matches(dev, cpu, exact=path == "serial")


@needs_cuda
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(
    "kw",
    [
        dict(pair_loss="squared_hinge"),
        dict(pair_loss="logistic"),
        dict(pair_loss="squared_hinge", pairs=2),
        dict(pair_loss="logistic", pairs=2),
    ],
    ids=["sq-all", "log-all", "sq-k2", "log-k2"],
)
def test_group_with_many_conversions(path, kw):
    """A group with 40 conversions (> 32: merge sort, several merge passes) plus small groups."""
    gpu.SERIAL_MAX_ROWS = PATHS[path]
    rng = np.random.default_rng(5)
    yb = np.array([2] * 40 + [1] * 12 + [0] * 20, dtype=np.int8)
    zb = np.round(rng.normal(0, 1.2, yb.size), 1)  # many ties
    z0, y0, g0, w0 = make_data(11, n_groups=4, size=(1, 4))
    z = np.concatenate([zb, z0])
    y = np.concatenate([yb, y0])
    group = np.concatenate([np.full(yb.size, "big"), g0])
    w = np.concatenate([rng.uniform(0.5, 2, yb.size), w0])
    order = rng.permutation(z.size)
    z, y, group, w = z[order], y[order], group[order], w[order]
    for weight in (None, w):
        dev, cpu = both(dict(kw, margin_click_only=0.05, margin_no_click=0.2), z, y, group, weight, iteration=1)
        assert_matches(dev, cpu, exact=path == "serial")
    data = prepare_data(y, group, w)
    gpu.pwiser_grad_hess_cuda(PWiseRObjective(device="cuda", **kw), z, data, 0)
    layout = data._device_cache[None]["layouts"][gpu.serial_max_rows()]
    assert layout.n_big == (1 if path == "rowparallel" else 0)  # the 72-row group takes the intended path


@needs_cuda
@pytest.mark.parametrize("path", list(PATHS))
def test_groups_without_pairs(path):
    """Groups without a conversion, with conversions only, a term without partners, lam=0."""
    gpu.SERIAL_MAX_ROWS = PATHS[path]
    y = np.array(
        [
            0,
            0,
            1,
            1,
            0,  # no conversion
            2,
            2,
            2,  # conversions only: inactive
            2,
            1,
            1,
            1,
            1,
            1,  # no non-click partner: only the P x C term
            2,
            2,
            0,
            0,
            0,
            0,
            0,
        ],
        dtype=np.int8,
    )  # no click-only partner
    group = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 6 + ["d"] * 7)
    z = np.linspace(-2, 2, y.size)
    for kw in (dict(), dict(pair_loss="logistic"), dict(pairs=3), dict(lam=0.0)):
        dev, cpu = both(kw, z, y, group)
        assert_matches(dev, cpu, exact=path == "serial")
    # no active group at all: BCE only
    dev, cpu = both({}, z[:8], y[:8], group[:8])
    assert_matches(dev, cpu, exact=True)
    # no rows at all
    for weight in (None, np.zeros(0)):
        dev, cpu = both({}, np.zeros(0), np.zeros(0, np.int8), None, weight)
        assert_matches(dev, cpu, exact=True)


@needs_cuda
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("pair_loss", LOSSES)
def test_extreme_margins(path, pair_loss):
    gpu.SERIAL_MAX_ROWS = PATHS[path]
    z0, y, group, w = make_data(3, n_groups=6)
    z = np.resize(np.array([-745.0, -60.0, -35.0, -1e-300, 0.0, 35.0, 60.0, 745.0, 1e4, -1e4]), z0.size)
    for pairs in ("all", 2):
        dev, cpu = both(dict(pair_loss=pair_loss, pairs=pairs), z, y, group, w)
        g, h = host(dev)
        assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
        assert_matches(dev, cpu, exact=path == "serial")


@needs_cuda
def test_float32_host_and_device_margins():
    """XGBoost passes float32 host margins; CuPy-style device margins are used in place."""
    z, y, group, w = make_data(21)
    z32 = z.astype(np.float32)
    obj = PWiseRObjective(device="cuda", pairs=2)
    cpu = PWiseRObjective(pairs=2).grad_hess(z32, y, group, w, iteration=2)
    assert_matches(obj.grad_hess(z32, y, group, w, iteration=2), cpu, exact=True)
    data = prepare_data(y, group, w)
    for zd in (
        kc.get_cuda().to_device(z32),
        kc.get_cuda().to_device(z32.astype(np.float64)),
        kc.get_cuda().to_device(z32.reshape(-1, 1)),
    ):
        assert_matches(gpu.pwiser_grad_hess_cuda(obj, zd, data, 2), cpu, exact=True)
    with pytest.raises(ValueError, match="rows"):
        gpu.pwiser_grad_hess_cuda(obj, kc.get_cuda().to_device(z32[:-1]), data, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        gpu.pwiser_grad_hess_cuda(obj, kc.get_cuda().to_device(np.zeros(z.size, np.int32)), data, 2)


@needs_cuda
def test_sampled_draws_are_the_cpu_draws():
    key = K.round_key(123, 4)
    counters = np.arange(0, 3000, 7, dtype=np.int64)
    for n in (1, 2, 3, 17, 1000):
        expect = K.draw_indices(key, counters, n)  # compiled for the CPU
        np.testing.assert_array_equal(gpu.draw_indices_cuda(key, counters, n), expect)


@needs_cuda
def test_sampled_rounds_and_reproducibility():
    z, y, group, w = make_data(8)
    obj = PWiseRObjective(device="cuda", pairs=2, random_state=3)
    a0 = host(obj.grad_hess(z, y, group, w, iteration=0))
    a1 = host(obj.grad_hess(z, y, group, w, iteration=1))
    b0 = host(obj.grad_hess(z, y, group, w, iteration=0))
    np.testing.assert_array_equal(a0[0], b0[0])
    assert not np.array_equal(a0[0], a1[0])


# --------------------------------------------------------------------------- caching and adapters


@needs_cuda
def test_device_data_cached_and_fresh_outputs():
    z, y, group, w = make_data(9)
    data = prepare_data(y, group, w)
    obj = PWiseRObjective(device="cuda")
    g1, h1 = gpu.pwiser_grad_hess_cuda(obj, z, data, 0)
    dev = data._device_cache[None]
    perm = dev["perm"]
    g2, h2 = gpu.pwiser_grad_hess_cuda(obj, z + 1.0, data, 1)
    assert data._device_cache[None]["perm"] is perm  # sent once per PreparedData
    assert g1 is not g2 and h1 is not h2  # direct calls never alias earlier results
    assert not np.array_equal(g1.copy_to_host(), g2.copy_to_host())
    g3, _ = gpu.pwiser_grad_hess_cuda(obj, z, data, 0, reuse=True)
    g4, _ = gpu.pwiser_grad_hess_cuda(obj, z, data, 0, reuse=True)
    assert g3 is g4


@needs_cuda
def test_xgboost_adapter_reuses_buffers():
    """obj(predt, dtrain) as xgb.train calls it: device gradients, buffers reused, rounds counted."""
    xgb = pytest.importorskip("xgboost")
    z, y, group, w = make_data(13)
    order = np.argsort(group, kind="stable")  # qid must be sorted
    z, y, group, w = z[order], y[order], group[order], w[order]
    qid = np.unique(group, return_inverse=True)[1]
    X = np.random.default_rng(0).normal(size=(y.size, 3))
    dtrain = xgb.DMatrix(X, label=y, weight=w, qid=qid)
    dev_obj = PWiseRObjective(device="cuda", pairs=2)
    cpu_obj = PWiseRObjective(pairs=2)
    cpu_obj._out_dtype = np.float64  # the device adapter hands float64: the CPU's sums before rounding
    outs = []
    for r in range(3):
        predt = (z + 0.1 * r).astype(np.float32)
        dg, dh = dev_obj(predt, dtrain)
        cg, ch = cpu_obj(predt, dtrain)
        assert hasattr(dg, "copy_to_host")
        if not SIMULATOR:
            assert hasattr(dg, "__cuda_array_interface__")
        assert_matches((dg, dh), (cg.copy(), ch.copy()), exact=True)
        outs.append(dg)
    assert outs[0] is outs[1] is outs[2]
    assert dev_obj.iteration_ == cpu_obj.iteration_ == 3


@needs_cuda
def test_entire_space_cvr_objective():
    rng = np.random.default_rng(4)
    z, y, _, w = make_data(17)
    a = rng.uniform(1e-6, 1 - 1e-6, z.size)
    for weight in (None, w):
        cpu = EntireSpaceCVRObjective().grad_hess(z, y, ctr_prob=a, weight=weight)
        dev = EntireSpaceCVRObjective(device="cuda").grad_hess(z, y, ctr_prob=a, weight=weight)
        assert_matches(dev, cpu, exact=True)


@needs_cuda
def test_device_ordinal_and_config():
    z, y, group, _ = make_data(1, n_groups=3)
    dev, cpu = both(dict(), z, y, group)
    assert_matches(dev, cpu)
    assert_matches(PWiseRObjective(device="cuda:0").grad_hess(z, y, group), cpu)
    with pytest.raises(RuntimeError, match="cuda:7"):
        PWiseRObjective(device="cuda:7").grad_hess(z, y, group)
    assert gpu.block_size() == 32


def test_block_size_configuration(monkeypatch):
    monkeypatch.setattr(gpu, "BLOCK_SIZE", None)
    monkeypatch.setattr(gpu, "SERIAL_MAX_ROWS", None)
    monkeypatch.delenv("GBDT_PWISER_CUDA_BLOCK", raising=False)
    monkeypatch.delenv("GBDT_PWISER_CUDA_SERIAL_MAX", raising=False)
    assert gpu.block_size() == 256 and gpu.serial_max_rows() == 512
    monkeypatch.setenv("GBDT_PWISER_CUDA_BLOCK", "64")
    monkeypatch.setenv("GBDT_PWISER_CUDA_SERIAL_MAX", "8")
    assert gpu.block_size() == 64 and gpu.serial_max_rows() == 8
    monkeypatch.setattr(gpu, "BLOCK_SIZE", 128)
    assert gpu.block_size() == 128
    for bad in ("0", "abc", "2048"):
        monkeypatch.setattr(gpu, "BLOCK_SIZE", None)
        monkeypatch.setenv("GBDT_PWISER_CUDA_BLOCK", bad)
        with pytest.raises(ValueError):
            gpu.block_size()


# --------------------------------------------------------------------------- without CUDA


def _run_without_simulator(code: str, **env_extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_PROBE = """
import json, sys
{pre}
import numpy as np
import gbdt_pwiser
import gbdt_pwiser.kernels.cuda
import gbdt_pwiser.objectives._cuda
from gbdt_pwiser import PWiseRObjective
def cuda_modules():
    return sorted(m for m in ("numba.cuda", "numba_cuda") if sys.modules.get(m) is not None)
res = {{"cuda_imported": cuda_modules(),
        "boosters_imported": sorted(m for m in ("xgboost", "lightgbm") if m in sys.modules)}}
obj = PWiseRObjective(device="cuda")  # constructing must not touch CUDA either
res["after_init"] = cuda_modules()
try:
    obj.grad_hess(np.zeros(3), [2, 1, 0])
    res["error"] = None
except RuntimeError as exc:
    res["error"] = str(exc)
print(json.dumps(res))
"""


def test_import_does_not_touch_cuda_and_no_device_error():
    """Without the simulator and without a visible GPU, device='cuda' raises a clear RuntimeError."""
    res = _run_without_simulator(_PROBE.format(pre=""), CUDA_VISIBLE_DEVICES="")
    assert res["cuda_imported"] == [] and res["after_init"] == []
    assert res["boosters_imported"] == []  # the objectives (and their CUDA host side) need neither booster
    if res["error"] is None:  # pragma: no cover - a GPU visible despite CUDA_VISIBLE_DEVICES=""
        pytest.skip("a CUDA device is visible even with CUDA_VISIBLE_DEVICES=''")
    assert "no CUDA driver or CUDA device" in res["error"]
    assert "device='cpu'" in res["error"]


def test_missing_numba_cuda_error():
    res = _run_without_simulator(_PROBE.format(pre="sys.modules['numba_cuda'] = None"))
    assert res["cuda_imported"] == []
    assert res["error"] is not None and "pip install gbdt-pwiser[gpu]" in res["error"]


# --------------------------------------------------------------------------- real GPU only


def _real_gpu() -> bool:
    return CUDA_OK and not SIMULATOR


@pytest.mark.skipif(not _real_gpu(), reason="needs a real CUDA GPU (not the simulator)")
def test_xgboost_trains_on_gpu_with_device_gradients():
    xgb = pytest.importorskip("xgboost")
    from gbdt_pwiser import initial_margin

    rng = np.random.default_rng(0)
    n, d = 20_000, 8
    X = rng.normal(size=(n, d)).astype(np.float32)
    logit = X[:, 0] - 0.5 * X[:, 1] - 1.0
    click = rng.random(n) < 1 / (1 + np.exp(-logit))
    conv = click & (rng.random(n) < 1 / (1 + np.exp(-(X[:, 2] - 0.5))))
    y = click.astype(np.int8) + conv.astype(np.int8)
    qid = np.repeat(np.arange(n // 25), 25)
    dtrain = xgb.DMatrix(X, label=y, qid=qid)
    params = {
        "device": "cuda",
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.3,
        "base_score": initial_margin(y),
        "disable_default_eval_metric": 1,
    }
    obj_gpu = PWiseRObjective(device="cuda", pairs=4)
    b_gpu = xgb.train(params, dtrain, num_boost_round=10, obj=obj_gpu)
    b_cpu = xgb.train(params, dtrain, num_boost_round=10, obj=PWiseRObjective(pairs=4))
    m_gpu = b_gpu.predict(dtrain, output_margin=True)
    m_cpu = b_cpu.predict(dtrain, output_margin=True)
    np.testing.assert_allclose(m_gpu, m_cpu, atol=1e-4)
    loss = PWiseRObjective(pairs=4).loss
    assert loss(m_gpu, y, qid) < loss(np.full(n, initial_margin(y)), y, qid)
    assert obj_gpu.iteration_ == 10


# --------------------------------------------------------------------------- launch types = compiled types


@needs_cuda
def test_launch_argument_types_are_the_compiled_signatures(monkeypatch):
    """Every launch passes exactly the types of ``KERNEL_SIGNATURES`` (what test_gpu_compile compiles)."""
    import numba

    real = kc.kernels()
    seen: dict[str, set] = {}

    class Recorder:
        def __init__(self, name):
            self.name = name

        def __getitem__(self, config):
            launch = getattr(real, self.name)[config]

            def call(*args):
                seen.setdefault(self.name, set()).add(tuple(str(numba.typeof(a)) for a in args))
                return launch(*args)

            return call

    monkeypatch.setattr(kc, "_KERNELS", SimpleNamespace(**{n: Recorder(n) for n in kc.KERNELS}))
    z, y, group, w = make_data(31, n_groups=5)
    zb = np.round(np.random.default_rng(1).normal(0, 1, 60), 1)
    yb = np.array([2] * 36 + [1] * 10 + [0] * 14, dtype=np.int8)
    for path in PATHS:
        gpu.SERIAL_MAX_ROWS = PATHS[path]
        for kw in (
            dict(),
            dict(pair_loss="logistic"),
            dict(pairs=2),
            dict(pair_loss="logistic", pairs=2),
            dict(lam=0.0),
        ):
            for margin in (np.float32, np.float64):
                for weight in (None, w):
                    PWiseRObjective(device="cuda", **kw).grad_hess(z.astype(margin), y, group, weight)
                PWiseRObjective(device="cuda", **kw).grad_hess(zb.astype(margin), yb, None)
    a = np.random.default_rng(2).uniform(0.1, 0.9, z.size)
    for margin in (np.float32, np.float64):
        EntireSpaceCVRObjective(device="cuda").grad_hess(z.astype(margin), y, ctr_prob=a)
    gpu.draw_indices_cuda(K.round_key(1, 2), np.arange(5), 3)
    declared = {
        name: {tuple(map(str, kc.KERNEL_SIGNATURES(m)[name])) for m in ("float32", "float64")} for name in kc.KERNELS
    }
    assert set(seen) == set(kc.KERNELS)  # every kernel was launched
    for name, sigs in seen.items():
        assert sigs <= declared[name], (name, sigs - declared[name])
