"""CUDA kernels of BCE + λ·PWiseR and the entire-space CVR loss (numba-cuda).

The mathematics is :mod:`gbdt_pwiser.kernels.shared`, the same source the CPU
drivers compile; the kernels here only map CUDA threads onto rows or groups.
The host side (device data, launches, XGBoost buffers) is
:mod:`gbdt_pwiser.objectives._cuda`.

Importing this module imports neither ``numba.cuda`` nor probes any hardware:
the kernels are plain Python functions until :func:`kernels` compiles them
(``cuda.jit``) on first use. Without numba-cuda or a usable GPU,
:func:`get_cuda` raises a ``RuntimeError`` that says why.

Kernels (``KERNEL_SIGNATURES`` lists the argument types each is launched with,
for float32 and float64 margins; ``tests/gpu/test_gpu_compile.py`` compiles
them all to PTX and cubins without a GPU):

* ``bce`` — one thread per row; ``esmm`` — one thread per row (docs/mathematics.md §5);
* ``group`` — one thread per *small* active group: :func:`shared.pair_group`,
  the CPU's code, so the order of every floating-point accumulation is the CPU's;
* ``big_*`` — groups larger than ``serial_max_rows()`` spread over one thread
  per row: squared hinge as fill → stable parallel merge sort (``log2 |P|``
  launches of ``big_merge``) → ``big_prefix`` → ``big_sq_partner`` (bucket sums
  by atomics) → ``big_sq_suffix``; logistic one thread per row over its
  opposite set; sampled one thread per conversion (partners by atomics);
* ``draw`` — the counter-based draws, for the tests.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

import numpy as np

from . import scalars as SC
from . import shared as S

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


def group_kernel(z, w, has_w, perm, aptr, anP, anC, pptr, big, sc_c, sc_n, m1, m2, loss_kind, k, key,
                 g, h, sp, si, tp, ti, pa, pb, bw, bwp):
    a = cuda.grid(1)
    if a < anP.size and big[a] == 0:
        S.pair_group(a, z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
                     g, h, sp, si, tp, ti, pa, pb, bw, bwp)


# row-parallel kernels of large groups: one thread per position lpos[x] of group lgrp[x]


def big_fill_kernel(z, perm, aptr, anP, pptr, lpos, lgrp, sp, si):
    x = cuda.grid(1)
    if x < lpos.size:
        a = lgrp[x]
        q = lpos[x] - aptr[a]
        if q < anP[a]:
            S.load_conversion(z, perm, aptr[a], q, sp, si, pptr[a])


def big_merge_kernel(aptr, anP, pptr, lpos, lgrp, width, src_p, src_i, dst_p, dst_i):
    """One pass of a stable merge sort: each element finds its rank in the sibling run."""
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    q = lpos[x] - aptr[a]
    nP = anP[a]
    if q >= nP:
        return
    po = pptr[a]
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


def big_prefix_kernel(w, has_w, anP, pptr, big, sp, si, pa, pb, bw, bwp):
    a = cuda.grid(1)
    if a >= anP.size or big[a] == 0:
        return
    nP = anP[a]
    po = pptr[a]
    bo = po + a
    B = bw.size // 2  # bw, bwp: term 0's buckets, then term 1's
    S.conversion_prefix(w, has_w, sp, si, po, bo, nP, pa, pb)
    for q in range(nP + 1):
        bw[bo + q] = 0.0
        bw[B + bo + q] = 0.0
        bwp[bo + q] = 0.0
        bwp[B + bo + q] = 0.0


def big_sq_partner_kernel(z, w, has_w, perm, aptr, anP, anC, pptr, lpos, lgrp, sc_c, sc_n, m1, m2,
                          sp, pa, pb, bw, bwp, g, h):
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    t = lpos[x]
    s = aptr[a]
    nP = anP[a]
    if t < s + nP:
        return
    term = 0 if t < s + nP + anC[a] else 1
    m, sc = SC.partner_term(t, s, nP, anC[a], m1, m2, sc_c, sc_n)
    if sc == 0.0:
        return
    po = pptr[a]
    bo = po + a
    S.sq_hinge_partner(z, w, has_w, perm[t], sp, po, nP, pa, pb, bo, bw, bwp, term * (bw.size // 2) + bo, m, sc,
                       g, h, True)


def big_sq_suffix_kernel(z, w, has_w, aptr, anP, anC, pptr, big, sc_c, sc_n, m1, m2, sp, si, bw, bwp, g, h):
    a = cuda.grid(1)
    if a >= anP.size or big[a] == 0:
        return
    nP = anP[a]
    po = pptr[a]
    bo = po + a
    for term in range(2):
        js, je, m, sc = SC.term_span(term, aptr[a], nP, anC[a], aptr[a + 1], m1, m2, sc_c, sc_n)
        if je != js and sc != 0.0:
            S.sq_hinge_suffix(z, w, has_w, sp, si, po, nP, bw, bwp, term * (bw.size // 2) + bo, m, sc, g, h)


def big_logistic_kernel(z, w, has_w, perm, aptr, anP, anC, lpos, lgrp, sc_c, sc_n, m1, m2, g, h):
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    t = lpos[x]
    s = aptr[a]
    nP = anP[a]
    if t < s + nP:
        S.logistic_conversion(z, w, has_w, perm, s, nP, anC[a], aptr[a + 1], sc_c, sc_n, m1, m2, t, g, h, False)
    else:
        S.logistic_partner(z, w, has_w, perm, s, nP, anC[a], sc_c, sc_n, m1, m2, t, g, h)


def big_sampled_kernel(z, w, has_w, perm, aptr, anP, anC, lpos, lgrp, sc_c, sc_n, m1, m2, loss_kind, k, key,
                       g, h):
    x = cuda.grid(1)
    if x >= lpos.size:
        return
    a = lgrp[x]
    t = lpos[x]
    s = aptr[a]
    if t < s + anP[a]:
        S.sampled_conversion(z, w, has_w, perm, s, anP[a], anC[a], aptr[a + 1], sc_c, sc_n, m1, m2, loss_kind,
                             k, key, t, g, h, True)


def draw_kernel(key, counters, n, out):
    x = cuda.grid(1)
    if x < counters.size:
        out[x] = SC.draw_index(key, counters[x], n)


#: name -> kernel function (plain Python; :func:`kernels` compiles them).
KERNELS = {
    "bce": bce_kernel, "esmm": esmm_kernel, "group": group_kernel, "big_fill": big_fill_kernel,
    "big_merge": big_merge_kernel, "big_prefix": big_prefix_kernel, "big_sq_partner": big_sq_partner_kernel,
    "big_sq_suffix": big_sq_suffix_kernel, "big_logistic": big_logistic_kernel,
    "big_sampled": big_sampled_kernel, "draw": draw_kernel,
}


def kernels() -> SimpleNamespace:
    """The compiled (``cuda.jit``) kernels, built once per process on first use."""
    global _KERNELS
    if _KERNELS is None:
        mod = get_cuda()
        _KERNELS = SimpleNamespace(**{name: mod.jit(fn) for name, fn in KERNELS.items()})
    return _KERNELS


def KERNEL_SIGNATURES(margin: str) -> dict[str, tuple]:  # noqa: N802 - a table, read like a constant
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

    z = {"float32": t.float32, "float64": t.float64}[margin][::1]
    f8, i8, u8, b1 = t.float64, t.int64, t.uint64, t.boolean
    F, I, Y, U = t.float64[::1], t.int64[::1], t.int8[::1], t.uint8[::1]
    pairs = (f8, f8, f8, f8)  # sc_c, sc_n, m1, m2
    return {
        "bce": (z, Y, F, b1, f8, F, F),
        "esmm": (z, Y, F, F, b1, f8, F, F),
        "group": (z, F, b1, I, I, I, I, I, U, *pairs, i8, i8, u8, F, F, F, I, F, I, F, F, F, F),
        "big_fill": (z, I, I, I, I, I, I, F, I),
        "big_merge": (I, I, I, I, I, i8, F, I, F, I),
        "big_prefix": (F, b1, I, I, U, F, I, F, F, F, F),
        "big_sq_partner": (z, F, b1, I, I, I, I, I, I, I, *pairs, F, F, F, F, F, F, F),
        "big_sq_suffix": (z, F, b1, I, I, I, I, U, *pairs, F, I, F, F, F, F),
        "big_logistic": (z, F, b1, I, I, I, I, I, I, *pairs, F, F),
        "big_sampled": (z, F, b1, I, I, I, I, I, I, *pairs, i8, i8, u8, F, F),
        "draw": (u8, I, i8, I),
    }
