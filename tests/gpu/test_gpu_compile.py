"""Every CUDA kernel compiles for real GPUs, without a GPU: PTX by NVVM, then a cubin by nvJitLink.

Each kernel of :mod:`gbdt_pwiser.kernels.cuda` is compiled with the argument
types the host code launches it with (``KERNEL_SIGNATURES``; float32 and
float64 margins) for compute capability 9.0 (H100/H200), 10.0 (B200) and 12.0
(RTX 50xx), and the PTX is linked to a cubin. This needs the NVVM, libdevice
and nvJitLink of ``numba-cuda[cu13]`` (the ``test``/``gpu`` extras); with the
CUDA 12 NVVM (``numba-cuda[cu12]``, CUDA 12.9) the kernels with float
``cuda.atomic.add`` fail for sm_100/sm_120 (numba-cuda issue 603, fixed in
CUDA 13).

Kernels calling device functions ask the driver for the current device while
compiling (``numba.cuda.dispatcher.get_current_device``, a private name of
numba-cuda 0.30: the extras pin ``numba-cuda>=0.30,<0.31``); the tests replace
it by a stand-in reporting the target compute capability.

They skip with a reason when the toolchain is missing or under the simulator
(``NUMBA_ENABLE_CUDASIM=1`` replaces numba.cuda); ``make test`` sets
``GBDT_PWISER_REQUIRE_GPU_COMPILE=1`` so that CI fails instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os
import re
from types import SimpleNamespace

import pytest

from gbdt_pwiser.kernels import cuda as kc

pytestmark = pytest.mark.gpu_compile

CCS = [(9, 0), (10, 0), (12, 0)]
MARGINS = ("float32", "float64")
REQUIRED = os.environ.get("GBDT_PWISER_REQUIRE_GPU_COMPILE", "0") not in ("", "0")
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _toolchain_missing() -> str | None:
    if SIMULATOR:
        return "NUMBA_ENABLE_CUDASIM=1 replaces numba.cuda by the simulator, which compiles nothing"
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install 'numba-cuda[cu13]')"
    try:
        kc.import_cuda()
        from numba.cuda.cudadrv import nvvm

        if not nvvm.is_available():
            return "NVVM not found (pip install 'numba-cuda[cu13]')"
        from cuda.bindings import nvjitlink  # noqa: F401
    except Exception as exc:  # any failure means: no toolchain
        return f"CUDA toolchain unusable: {type(exc).__name__}: {exc}"
    return None


MISSING = _toolchain_missing()
if MISSING and REQUIRED and not SIMULATOR:  # fail loudly in CI rather than skip
    raise RuntimeError(f"GBDT_PWISER_REQUIRE_GPU_COMPILE=1 but {MISSING}")
needs_toolchain = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


def _cases():
    """(kernel, margin dtype) pairs, margin-free kernels once."""
    sig32, sig64 = kc.KERNEL_SIGNATURES("float32"), kc.KERNEL_SIGNATURES("float64")
    out = []
    for name in kc.KERNELS:
        out.append((name, "float32"))
        if sig64[name] != sig32[name]:
            out.append((name, "float64"))
    return out


CASES = _cases()


@pytest.fixture
def target_device(monkeypatch):
    """Let compilation ask for 'the current device' without a driver; returns a setter for its cc."""
    import numba.cuda.dispatcher as dispatcher

    dev = SimpleNamespace(compute_capability=CCS[0])
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: dev)

    def set_cc(cc):
        dev.compute_capability = cc

    return set_cc


def link_cubin(ptx: str, cc: tuple[int, int], name: str) -> bytes:
    """Link PTX to a cubin with nvJitLink; raises with nvJitLink's log on failure."""
    from cuda.bindings import nvjitlink

    handle = nvjitlink.create(1, [f"-arch=sm_{cc[0]}{cc[1]}"])
    try:
        data = ptx.encode()
        try:
            nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), name)
            nvjitlink.complete(handle)
        except nvjitlink.nvJitLinkError as exc:
            size = nvjitlink.get_error_log_size(handle)
            log = bytearray(size)
            nvjitlink.get_error_log(handle, log)
            raise AssertionError(f"nvJitLink failed for {name} sm_{cc[0]}{cc[1]}: {exc}\n{log.decode()}") from exc
        cubin = bytearray(nvjitlink.get_linked_cubin_size(handle))
        nvjitlink.get_linked_cubin(handle, cubin)
        return bytes(cubin)
    finally:
        nvjitlink.destroy(handle)


def test_every_kernel_has_signatures():
    for margin in MARGINS:
        assert set(kc.KERNEL_SIGNATURES(margin)) == set(kc.KERNELS)
    assert len(CASES) == 22  # 10 kernels take margins (x2 dtypes), 2 do not


@needs_toolchain
@pytest.mark.parametrize("cc", CCS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
@pytest.mark.parametrize("name,margin", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_kernel_compiles_to_ptx_and_cubin(name, margin, cc, target_device):
    from numba import cuda

    target_device(cc)
    sig = kc.KERNEL_SIGNATURES(margin)[name]
    ptx, restype = cuda.compile_ptx(kc.KERNELS[name], sig, cc=cc)
    assert str(restype) == "none"
    assert f".target sm_{cc[0]}{cc[1]}" in ptx
    assert ".entry" in ptx and ".address_size 64" in ptx
    if name in ("big_sq_partner", "big_sampled"):  # float atomics (numba-cuda issue 603 on CUDA 12)
        assert re.search(r"\b(atom|red)\.[a-z.]*add\.f64\b", ptx)
    cubin = link_cubin(ptx, cc, name)
    assert cubin[:4] == b"\x7fELF" and len(cubin) > 1000
