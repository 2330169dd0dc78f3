"""CUDA kernels of BCE + λ·PWiseR and the entire-space CVR loss (numba-cuda).

The mathematics is :mod:`gbdt_pwiser.kernels.scalars` and :mod:`gbdt_pwiser.kernels.groups`,
the same source the CPU drivers compile, called with the same argument groups (``Rows``,
``Groups``, ``Pairs``, ``Scratch``); the kernels here only map CUDA threads onto rows or groups.
The host side (device data, launches, XGBoost buffers) is :mod:`gbdt_pwiser.objectives._cuda`.

Importing this module imports neither ``numba.cuda`` nor probes any hardware:
the kernels are plain Python functions until :func:`kernels` compiles them
(``cuda.jit``) on first use. Without numba-cuda or a usable GPU,
:func:`get_cuda` raises a ``RuntimeError`` that says why.

Kernels (``KERNEL_SIGNATURES`` lists the argument types each is launched with,
for float32 and float64 margins; ``tests/gpu/test_gpu_compile.py`` compiles
them all to PTX and cubins without a GPU):

* ``bce`` (λ = 0) and ``bce_pd`` (storing p and σ' of every row, as the CPU's BCE pass does) —
  one thread per row; ``esmm`` — one thread per row (docs/mathematics.md §5);
* ``group`` — one thread per *small* active group: :func:`groups.pair_group`, the function the CPU
  drivers call per group, so the order of every floating-point accumulation is the CPU's;
* ``big_*`` — groups larger than ``serial_max_rows()`` spread over one thread
  per row: squared hinge as fill → stable parallel merge sort (``log2 |P|``
  launches of ``big_merge``) → ``big_prefix`` → ``big_sq_partner`` (bucket sums
  by atomics) → ``big_sq_suffix``; other losses' exact mode one thread per row over its
  opposite set (``big_all_pairs``); sampled one thread per conversion (partners by atomics);
* ``draw`` — the counter-based draws, for the tests.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

import numpy as np

from . import groups as GR
from . import scalars as SC

__all__ = ["cuda_status", "get_cuda", "kernels", "KERNELS", "KERNEL_SIGNATURES", "is_simulator"]

_INSTALL_HINT = "pip install gbdt-pwiser[gpu]"

#: ``numba.cuda`` once imported (a module global: the simulator swaps it inside kernels).
cuda: Any = None
_KERNELS: SimpleNamespace | None = None


# --------------------------------------------------------------------------- availability


def import_cuda() -> Any:
    """Import ``numba.cuda`` (no device needed) or raise a RuntimeError naming the package."""
    global cuda
    if cuda is not None:
        return cuda
    if importlib.util.find_spec("numba_cuda") is None:
        raise RuntimeError(
            "device='cuda' needs the numba-cuda package, which is not installed: "
            f"{_INSTALL_HINT} (or pip install numba-cuda), or use device='cpu'"
        )
    try:
        from numba import cuda as mod
    except ImportError as exc:  # pragma: no cover - broken installation
        raise RuntimeError(
            f"device='cuda' could not import numba.cuda ({exc}); {_INSTALL_HINT}, or use device='cpu'"
        ) from exc
    cuda = mod
    return cuda


def get_cuda() -> Any:
    """``numba.cuda`` with a usable device (or the simulator), else RuntimeError."""
    mod = import_cuda()
    if not mod.is_available():
        reason = "numba.cuda.is_available() is False"
        try:
            mod.current_context()
        except Exception as exc:  # CudaSupportError and friends carry the reason
            reason = " ".join(str(exc).split()) or type(exc).__name__
        raise RuntimeError(
            "device='cuda' but no CUDA driver or CUDA device was found "
            f"({reason}). Install an NVIDIA driver and check CUDA_VISIBLE_DEVICES, "
            "or use device='cpu'."
        )
    return mod


def is_simulator(mod: Any = None) -> bool:
    """True under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    mod = cuda if mod is None else mod
    return "simulator" in type(getattr(mod, "gpus", None)).__module__


def cuda_status() -> tuple[bool, str]:
    """Whether ``device="cuda"`` can run here, and why not.

    Returns
    -------
    ok : bool
        True when numba-cuda is installed and a GPU (or the simulator,
        ``NUMBA_ENABLE_CUDASIM=1``) is usable.
    message : str
        ``"simulator"``, ``"gpu"`` or the reason it cannot run.
    """
    try:
        mod = get_cuda()
    except RuntimeError as exc:
        return False, str(exc)
    return True, "simulator" if is_simulator(mod) else "gpu"


# --------------------------------------------------------------------------- kernels (plain Python until compiled)


def bce_kernel(z, y, w, has_w, floor, g, h):
    i = cuda.grid(1)
    if i < g.size:
        gi, hi = SC.bce_row(np.float64(z[i]), y[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi


def esmm_kernel(u, v, a, w, has_w, floor, g, h):
    i = cuda.grid(1)
    if i < g.size:
        gi, hi = SC.esmm_row(np.float64(u[i]), v[i], a[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi


def bce_pd_kernel(R, floor, g, h):
    """:func:`bce_kernel` that also stores p and σ' of every row in R.pp, R.pd (read by the pair kernels)."""
    i = cuda.grid(1)
    if i < g.size:
        gi, hi, p, d = SC.bce_row_pd(np.float64(R.z[i]), R.y[i], R.w[i] if R.has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi
        R.pp[i] = p
        R.pd[i] = d


def group_kernel(R, G, P, S, big, g, h):
    a = cuda.grid(1)
    if a < G.anP.size and big[a] == 0:
        GR.pair_group(a, R, G, P, S, g, h)


# row-parallel kernels of large groups: one thread per position lpos[x] of group lgrp[x]; S holds
# the sorted conversions in S.sp/S.si once big_merge has run (the host passes the ping-pong
# buffers that hold them), and two sets of buckets: term 0's, then term 1's (B = bw.size // 2)


def big_fill_kernel(R, G, S, lpos, lgrp):
    x = cuda.grid(1)
    if x < lpos.size:
        a = lgrp[x]
        q = lpos[x] - G.aptr[a]
        if q < G.anP[a]:
            GR.load_conversion(R, G.perm, G.aptr[a], q, S.sp, S.si, G.pptr[a])


def big_merge_kernel(G, lpos, lgrp, width, src_p, src_i, dst_p, dst_i):
    """One pass of a stable merge sort: each element finds its rank in the sibling run."""
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    q = lpos[x] - G.aptr[a]
    nP = G.anP[a]
    if q >= nP:
        return
    po = G.pptr[a]
    own = (q // width) * width
    block = (q // (2 * width)) * (2 * width)
    kp = src_p[po + q]
    if own == block:  # left run: sibling elements strictly smaller go first
        lo = own + width
        hi = min(lo + width, nP)
        ss = lo
        while lo < hi:
            mid = (lo + hi) >> 1
            if src_p[po + mid] < kp:
                lo = mid + 1
            else:
                hi = mid
    else:  # right run: sibling elements smaller or equal go first
        lo = own - width
        hi = own
        ss = lo
        while lo < hi:
            mid = (lo + hi) >> 1
            if src_p[po + mid] <= kp:
                lo = mid + 1
            else:
                hi = mid
    cnt = lo - ss if lo > ss else 0
    d = po + block + (q - own) + cnt
    dst_p[d] = kp
    dst_i[d] = src_i[po + q]


def big_prefix_kernel(R, G, S, big):
    a = cuda.grid(1)
    if a >= G.anP.size or big[a] == 0:
        return
    nP = G.anP[a]
    bo = G.pptr[a] + a
    GR.conversion_prefix(R, S, G.pptr[a], bo, nP)
    GR.clear_buckets(S, bo, nP)
    GR.clear_buckets(S, S.bw.size // 2 + bo, nP)


def big_sq_partner_kernel(R, G, P, S, lpos, lgrp, g, h):
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    t = lpos[x]
    s = G.aptr[a]
    nP = G.anP[a]
    if t < s + nP:
        return
    term = 0 if t < s + nP + G.anC[a] else 1
    m, sc = SC.partner_term(P, t, s, nP, G.anC[a])
    if sc == 0.0:
        return
    bo = G.pptr[a] + a
    GR.sq_hinge_partner(R, S, G.perm[t], G.pptr[a], nP, bo, term * (S.bw.size // 2) + bo, m, sc, g, h, True)


def big_sq_suffix_kernel(R, G, P, S, big, g, h):
    a = cuda.grid(1)
    if a >= G.anP.size or big[a] == 0:
        return
    nP = G.anP[a]
    po = G.pptr[a]
    for term in range(2):
        js, je, m, sc = SC.term_span(P, term, G.aptr[a], nP, G.anC[a], G.aptr[a + 1])
        if je != js and sc != 0.0:
            GR.sq_hinge_suffix(R, S, po, nP, term * (S.bw.size // 2) + po + a, m, sc, g, h)


def big_all_pairs_kernel(R, G, P, lpos, lgrp, g, h):
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    t = lpos[x]
    s = G.aptr[a]
    nP = G.anP[a]
    if t < s + nP:
        GR.all_pairs_conversion(R, G, P, s, nP, G.anC[a], G.aptr[a + 1], t, g, h, False)
    else:
        GR.all_pairs_partner(R, G, P, s, nP, G.anC[a], t, g, h)


def big_sampled_kernel(R, G, P, lpos, lgrp, g, h):
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    t = lpos[x]
    s = G.aptr[a]
    if t < s + G.anP[a]:
        GR.sampled_conversion(R, G, P, s, G.anP[a], G.anC[a], G.aptr[a + 1], t, g, h, True)


def draw_kernel(key, counters, n, out):
    x = cuda.grid(1)
    if x < counters.size:
        out[x] = SC.draw_index(key, counters[x], n)


#: name -> kernel function (plain Python; :func:`kernels` compiles them).
KERNELS = {
    "bce": bce_kernel,
    "bce_pd": bce_pd_kernel,
    "esmm": esmm_kernel,
    "group": group_kernel,
    "big_fill": big_fill_kernel,
    "big_merge": big_merge_kernel,
    "big_prefix": big_prefix_kernel,
    "big_sq_partner": big_sq_partner_kernel,
    "big_sq_suffix": big_sq_suffix_kernel,
    "big_all_pairs": big_all_pairs_kernel,
    "big_sampled": big_sampled_kernel,
    "draw": draw_kernel,
}


def kernels() -> SimpleNamespace:
    """The compiled (``cuda.jit``) kernels, built once per process on first use."""
    global _KERNELS
    if _KERNELS is None:
        mod = get_cuda()
        _KERNELS = SimpleNamespace(**{name: mod.jit(fn) for name, fn in KERNELS.items()})
    return _KERNELS


def KERNEL_SIGNATURES(margin: str) -> dict[str, tuple]:  # upper case: a table, read like a constant
    """Argument types of every kernel as the host code launches it, for ``margin`` dtype z.

    Parameters
    ----------
    margin : {"float32", "float64"}
        The margins' dtype (XGBoost hands float32; device margins may be either).

    Returns
    -------
    dict
        Kernel name (a key of ``KERNELS``) -> tuple of numba types.
    """
    from numba import types as t

    scalar: dict[str, Any] = {"float32": t.float32, "float64": t.float64}
    z = scalar[margin][::1]
    f8, i8, u8, b1 = t.float64, t.int64, t.uint64, t.boolean
    # one letter per array type: F float64, I int64, Y int8, U uint8 (I cannot be misread in this table)
    F, I, Y, U = t.float64[::1], t.int64[::1], t.int8[::1], t.uint8[::1]  # noqa: E741
    R = t.BaseTuple.from_types((z, Y, F, b1, F, F, i8), GR.Rows)
    G = t.BaseTuple.from_types((I, I, I, I, I), GR.Groups)
    P = t.BaseTuple.from_types((f8, f8, f8, f8, i8, i8, u8), GR.Pairs)
    S = t.BaseTuple.from_types((F, I, F, I, F, F, F, F), GR.Scratch)
    return {
        "bce": (z, Y, F, b1, f8, F, F),
        "bce_pd": (R, f8, F, F),
        "esmm": (z, Y, F, F, b1, f8, F, F),
        "group": (R, G, P, S, U, F, F),
        "big_fill": (R, G, S, I, I),
        "big_merge": (G, I, I, i8, F, I, F, I),
        "big_prefix": (R, G, S, U),
        "big_sq_partner": (R, G, P, S, I, I, F, F),
        "big_sq_suffix": (R, G, P, S, U, F, F),
        "big_all_pairs": (R, G, P, I, I, F, F),
        "big_sampled": (R, G, P, I, I, F, F),
        "draw": (u8, I, i8, I),
    }
