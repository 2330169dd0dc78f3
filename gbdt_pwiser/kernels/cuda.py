"""CUDA gradients and Hessians of BCE + λ·PWiseR (SPEC §2–§4) with numba-cuda.

``PWiseRObjective(device="cuda")`` and ``EntireSpaceCVRObjective(device="cuda")``
dispatch here. The results are the CPU kernels' numbers (:mod:`gbdt_pwiser.kernels.cpu`)
computed in float64 on the GPU and returned as numba device arrays
(``__cuda_array_interface__``), which XGBoost 3.x (checked on 3.2) accepts as
gradients.

Importing this module imports neither ``numba.cuda`` nor probes any hardware;
the first call does. Without a usable GPU, the calls raise a ``RuntimeError``
that says why (numba-cuda missing, or no CUDA driver/device).

Framework notes
---------------
* **XGBoost** (``xgb.train(..., obj=obj)`` with ``device="cuda"``): XGBoost
  3.x passes the margins ``predt`` as a *host* ``numpy.float32`` array
  (``Booster.predict(..., training=True)`` copies them to the host) and
  accepts any gradient with ``__cuda_array_interface__``. So each round sends
  ``n`` float32 margins to the GPU and hands back float64 device gradients, no
  host copy of them. Device margins (anything with
  ``__cuda_array_interface__``, e.g. CuPy) are used in place.
* **LightGBM**'s ``device_type="gpu"``/``"cuda"`` calls a custom objective
  with host numpy arrays and expects host arrays back, so use
  ``device="cpu"`` there (the objective then runs on the CPU with a host copy
  per round, as LightGBM does anyway).

Design (stumpy-like layering)
-----------------------------
:func:`pwiser_grad_hess_cuda` validates and picks the device, the driver
:func:`_pwiser_launch` launches small kernels on one stream:

1. ``_bce_kernel`` — one thread per row: ``g = w (p - c)``, ``h = max(w σ', 1e-16)``.
2. ``_group_kernel`` — one thread per *small* active group (at most
   :func:`serial_max_rows` rows; groups are typically ~25 rows): a line-by-line
   port of the CPU per-group kernels (exact squared hinge with sorted
   conversions + prefix sums + binary search, exact logistic, sampled pairs),
   so the order of every floating-point accumulation is the CPU's.
3. Large groups (e.g. ``group=None``: one group of all rows) are spread over
   one thread per *row*:

   * squared hinge: conversions' probabilities → a stable parallel merge sort
     (``log2 |P|`` passes, one thread per element, rank by binary search) →
     per-group prefix sums → one thread per partner (binary search, its own
     gradient, bucket sums by atomics) → per-group suffix sums for the
     conversions;
   * logistic: one thread per row loops over its opposite set (conversions
     over their partners, partners over the conversions), in CPU order;
   * sampled: one thread per conversion; partners' sums by atomics (so only
     the partners of large groups may differ from the CPU by float rounding).

Sampled pairs use the CPU's counter-based SplitMix64 scheme
(:func:`gbdt_pwiser.kernels.cpu.draw_index`, counter ``(row_i*2 + term)*k + draw``,
key :func:`gbdt_pwiser.kernels.cpu.round_key`), so the same pairs are drawn.

The per-training arrays (labels, weights, group layout) go to the device once
per :class:`~gbdt_pwiser.objectives._prepare.PreparedData` and are cached on it
(attribute ``_device_cache``); the objective's XGBoost/LightGBM adapters also
reuse the output buffers from round to round.

Configuration: ``BLOCK_SIZE`` (env ``GBDT_PWISER_CUDA_BLOCK``, default 256
threads per block) and ``SERIAL_MAX_ROWS`` (env ``GBDT_PWISER_CUDA_SERIAL_MAX``,
default 512: larger active groups take the row-parallel path).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import warnings
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np

from . import cpu as K
from .._defaults import HESSIAN_FLOOR
from .._validation import check_margin

__all__ = [
    "BLOCK_SIZE",
    "SERIAL_MAX_ROWS",
    "block_size",
    "serial_max_rows",
    "cuda_status",
    "pwiser_grad_hess_cuda",
    "esmm_grad_hess_cuda",
]

#: Threads per block; ``None`` reads ``GBDT_PWISER_CUDA_BLOCK`` (default 256).
BLOCK_SIZE: int | None = None
#: Largest active group (rows) handled by one thread; ``None`` reads
#: ``GBDT_PWISER_CUDA_SERIAL_MAX`` (default 512).
SERIAL_MAX_ROWS: int | None = None

_DEFAULT_BLOCK = 256
_DEFAULT_SERIAL_MAX = 512
_INSTALL_HINT = "pip install gbdt-pwiser[gpu]"

# SplitMix64 constants, identical to gbdt_pwiser.kernels.cpu
_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ONE = np.uint64(1)

#: ``numba.cuda`` once the first call has imported it (a module global, so that
#: the simulator can swap it inside kernels).
cuda: Any = None
_KERNELS: SimpleNamespace | None = None


# --------------------------------------------------------------------------- configuration


def _positive_int(value: Any, name: str) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive int, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return v


def block_size() -> int:
    """Threads per CUDA block: ``BLOCK_SIZE``, else ``$GBDT_PWISER_CUDA_BLOCK``, else 256.

    Returns
    -------
    int
        A positive block size (at most 1024, the CUDA limit).
    """
    if BLOCK_SIZE is not None:
        v = _positive_int(BLOCK_SIZE, "gpu.BLOCK_SIZE")
    else:
        v = _positive_int(os.environ.get("GBDT_PWISER_CUDA_BLOCK", _DEFAULT_BLOCK), "GBDT_PWISER_CUDA_BLOCK")
    if v > 1024:
        raise ValueError(f"CUDA block size must be at most 1024, got {v}")
    return v


def serial_max_rows() -> int:
    """Largest active group (in rows) that one GPU thread handles alone.

    ``SERIAL_MAX_ROWS``, else ``$GBDT_PWISER_CUDA_SERIAL_MAX``, else 512.
    Larger groups use the row-parallel kernels.
    """
    if SERIAL_MAX_ROWS is not None:
        return _positive_int(SERIAL_MAX_ROWS, "gpu.SERIAL_MAX_ROWS")
    return _positive_int(os.environ.get("GBDT_PWISER_CUDA_SERIAL_MAX", _DEFAULT_SERIAL_MAX),
                         "GBDT_PWISER_CUDA_SERIAL_MAX")


# --------------------------------------------------------------------------- availability


def _import_cuda() -> Any:
    """Import ``numba.cuda`` or raise a RuntimeError naming the missing package."""
    if importlib.util.find_spec("numba_cuda") is None:
        raise RuntimeError(
            "device='cuda' needs the numba-cuda package, which is not installed: "
            f"{_INSTALL_HINT} (or pip install numba-cuda), or use device='cpu'"
        )
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - broken installation
        raise RuntimeError(
            f"device='cuda' could not import numba.cuda ({exc}); {_INSTALL_HINT}, or use device='cpu'"
        ) from exc
    return cuda


def _get_cuda() -> Any:
    """``numba.cuda`` with a usable device (or the simulator), else RuntimeError."""
    global cuda
    if cuda is not None:
        return cuda
    mod = _import_cuda()
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
    cuda = mod
    return cuda


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
        cuda = _get_cuda()
    except RuntimeError as exc:
        return False, str(exc)
    return True, "simulator" if _is_simulator(cuda) else "gpu"


def _is_simulator(cuda: Any) -> bool:
    """True under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return "simulator" in type(getattr(cuda, "gpus", None)).__module__


def _ordinal(device: str) -> int | None:
    return int(device.split(":", 1)[1]) if ":" in device else None


@contextlib.contextmanager
def _on_device(cuda: Any, ordinal: int | None) -> Iterator[None]:
    if ordinal is None:
        yield
        return
    if ordinal >= len(cuda.gpus):
        raise RuntimeError(f"device='cuda:{ordinal}' but only {len(cuda.gpus)} CUDA device(s) are visible")
    with cuda.gpus[ordinal]:
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numba's low-occupancy warnings for small launches (and, in the
    simulator, numpy's warnings about the intended uint64 wrap-around of SplitMix64)."""
    with warnings.catch_warnings():
        try:
            from numba.core.errors import NumbaPerformanceWarning

            warnings.simplefilter("ignore", NumbaPerformanceWarning)
        except ImportError:  # pragma: no cover
            pass
        if cuda is not None and _is_simulator(cuda):
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        yield


# --------------------------------------------------------------------------- kernels


def _kernels() -> SimpleNamespace:
    """Compile-on-first-use CUDA kernels (built once per process)."""
    global _KERNELS
    if _KERNELS is None:
        _get_cuda()
        _KERNELS = _build_kernels()
    return _KERNELS


def _build_kernels() -> SimpleNamespace:  # noqa: C901 - one kernel family
    """Define the device functions and kernels; ports of :mod:`gbdt_pwiser.kernels.cpu`.

    The kernels use the module global ``cuda`` (set by :func:`_get_cuda`).
    """
    SQ = K.LOSS_SQUARED_HINGE
    LOG2E, LN2_HI, LN2_LO = K._LOG2E, K._LN2_HI, K._LN2_LO

    # ---------------------------------------------------------------- scalars
    if _is_simulator(cuda):  # Python's math.ldexp wants a Python int

        def _pow2_scale(q, n):
            return math.ldexp(q, int(n))
    else:  # libdevice ldexp(double, int32); math.floor returns a float64 on CUDA

        def _pow2_scale(q, n):
            return math.ldexp(q, np.int32(n))

    pow2_scale = cuda.jit(device=True)(_pow2_scale)

    @cuda.jit(device=True)
    def exp_nonpos(x):
        # _kernels.exp_nonpos: Cody-Waite reduction + degree-13 Taylor polynomial;
        # 2^n by ldexp instead of building its bits (exact: the result stays normal).
        x = max(x, -708.0)
        n = math.floor(x * LOG2E + 0.5)
        r = (x - n * LN2_HI) - n * LN2_LO
        q = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
            1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
                1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600))))))))))))
        return pow2_scale(q, n)

    @cuda.jit(device=True)
    def sigmoid_and_deriv(z):
        # _kernels.sigmoid_and_deriv: (σ(z), σ'(z)) for any finite z, no overflow
        e = exp_nonpos(-abs(z))
        inv = 1.0 / (1.0 + e)
        p = inv if z >= 0.0 else e * inv
        return p, e * inv * inv

    @cuda.jit(device=True)
    def mix64(x):
        x = (x ^ (x >> _U30)) * _M1
        x = (x ^ (x >> _U27)) * _M2
        return x ^ (x >> _U31)

    @cuda.jit(device=True)
    def draw_index(key, counter, n):
        u = mix64(key + (np.uint64(counter) + _ONE) * _GOLDEN)
        return np.int64(((u >> _U32) * np.uint64(n)) >> _U32)

    @cuda.jit(device=True)
    def weight(w, has_w, r):
        return w[r] if has_w else 1.0

    # ---------------------------------------------------------------- sorting
    @cuda.jit(device=True)
    def merge_runs(ap, ai, bp, bi, lo, left, mid, right):
        # stable: a right element goes first only if strictly smaller
        x = left
        y = mid
        o = left
        while x < mid and y < right:
            if ap[lo + y] < ap[lo + x]:
                bp[lo + o] = ap[lo + y]
                bi[lo + o] = ai[lo + y]
                y += 1
            else:
                bp[lo + o] = ap[lo + x]
                bi[lo + o] = ai[lo + x]
                x += 1
            o += 1
        while x < mid:
            bp[lo + o] = ap[lo + x]
            bi[lo + o] = ai[lo + x]
            x += 1
            o += 1
        while y < right:
            bp[lo + o] = ap[lo + y]
            bi[lo + o] = ai[lo + y]
            y += 1
            o += 1

    @cuda.jit(device=True)
    def sort_conversions(sp, si, tp, ti, lo, n):
        """Stable sort of sp[lo:lo+n] ascending carrying si (same order as the CPU's)."""
        if n <= 32:
            for a in range(lo + 1, lo + n):
                kp = sp[a]
                ki = si[a]
                b = a - 1
                while b >= lo and sp[b] > kp:
                    sp[b + 1] = sp[b]
                    si[b + 1] = si[b]
                    b -= 1
                sp[b + 1] = kp
                si[b + 1] = ki
            return
        width = 1
        in_t = False
        while width < n:
            left = 0
            while left < n:
                mid = min(left + width, n)
                right = min(left + 2 * width, n)
                if in_t:
                    merge_runs(tp, ti, sp, si, lo, left, mid, right)
                else:
                    merge_runs(sp, si, tp, ti, lo, left, mid, right)
                left += 2 * width
            in_t = not in_t
            width *= 2
        if in_t:
            for q in range(lo, lo + n):
                sp[q] = tp[q]
                si[q] = ti[q]

    # ---------------------------------------------------------------- per-group ports (one thread)
    @cuda.jit(device=True)
    def sq_hinge_group(z, w, has_w, perm, s, nP, nC, e, po, bo, sc_c, sc_n, m1, m2,
                       g, h, sp, si, tp, ti, pa, pb, bw, bwp):
        for q in range(nP):
            r = perm[s + q]
            sp[po + q] = sigmoid_and_deriv(float(z[r]))[0]
            si[po + q] = r
        sort_conversions(sp, si, tp, ti, po, nP)
        pa[bo] = 0.0
        pb[bo] = 0.0
        for q in range(nP):
            wi = weight(w, has_w, si[po + q])
            pa[bo + q + 1] = pa[bo + q] + wi
            pb[bo + q + 1] = pb[bo + q] + wi * sp[po + q]
        for term in range(2):
            if term == 0:
                js = s + nP
                je = s + nP + nC
                m = m1
                sc = sc_c
            else:
                js = s + nP + nC
                je = e
                m = m2
                sc = sc_n
            if je == js or sc == 0.0:
                continue
            for q in range(nP + 1):
                bw[0, bo + q] = 0.0
                bwp[0, bo + q] = 0.0
            for t in range(js, je):
                j = perm[t]
                pj, dj = sigmoid_and_deriv(float(z[j]))
                lo = 0
                hi = nP
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if (pj - sp[po + mid]) + m > 0.0:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo > 0:
                    wj = weight(w, has_w, j)
                    A = pa[bo + lo]
                    B = pb[bo + lo]
                    g[j] += sc * 2.0 * wj * dj * ((pj + m) * A - B)
                    h[j] += sc * 2.0 * wj * dj * dj * A
                    bw[0, bo + lo] += wj
                    bwp[0, bo + lo] += wj * pj
            SW = 0.0
            SWP = 0.0
            for q in range(nP - 1, -1, -1):
                SW += bw[0, bo + q + 1]
                SWP += bwp[0, bo + q + 1]
                if SW != 0.0:
                    i = si[po + q]
                    pi = sp[po + q]
                    di = sigmoid_and_deriv(float(z[i]))[1]
                    wi = weight(w, has_w, i)
                    g[i] -= sc * 2.0 * wi * di * (SWP - (pi - m) * SW)
                    h[i] += sc * 2.0 * wi * di * di * SW

    @cuda.jit(device=True)
    def logistic_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, t, g, h):
        # conversion at position t against all partners (CPU loop order)
        i = perm[t]
        zi = float(z[i])
        wi = weight(w, has_w, i)
        gi = 0.0
        hi = 0.0
        for u in range(s + nP, e):
            if u < s + nP + nC:
                m = m1
                sc = sc_c
            else:
                m = m2
                sc = sc_n
            j = perm[u]
            sv, dv = sigmoid_and_deriv(float(z[j]) - zi + m)
            pw = sc * wi * weight(w, has_w, j)
            gi -= pw * sv
            hi += pw * dv
        g[i] += gi
        h[i] += hi

    @cuda.jit(device=True)
    def logistic_partner(z, w, has_w, perm, s, nP, nC, sc_c, sc_n, m1, m2, t, g, h):
        # partner at position t against all conversions (CPU accumulation order)
        if t < s + nP + nC:
            m = m1
            sc = sc_c
        else:
            m = m2
            sc = sc_n
        j = perm[t]
        zj = float(z[j])
        wj = weight(w, has_w, j)
        gj = g[j]
        hj = h[j]
        for q in range(nP):
            i = perm[s + q]
            sv, dv = sigmoid_and_deriv(zj - float(z[i]) + m)
            pw = sc * weight(w, has_w, i) * wj
            gj += pw * sv
            hj += pw * dv
        g[j] = gj
        h[j] = hj

    @cuda.jit(device=True)
    def sampled_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, loss_kind, k, key,
                           t, g, h, atomic):
        nN = e - s - nP - nC
        i = perm[t]
        zi = float(z[i])
        pi, di = sigmoid_and_deriv(zi)
        wi = weight(w, has_w, i)
        for term in range(2):
            if term == 0:
                nT = nC
                base = s + nP
                m = m1
                sc = sc_c
            else:
                nT = nN
                base = s + nP + nC
                m = m2
                sc = sc_n
            if nT == 0 or sc == 0.0:
                continue
            fac = sc * wi * nT / k
            for dd in range(k):
                jj = draw_index(key, (np.int64(i) * 2 + term) * k + dd, nT)
                j = perm[base + jj]
                pw = fac * weight(w, has_w, j)
                zj = float(z[j])
                if loss_kind == SQ:
                    pj, dj = sigmoid_and_deriv(zj)
                    dlt = (pj - pi) + m
                    if dlt > 0.0:
                        g[i] -= pw * 2.0 * dlt * di
                        h[i] += pw * 2.0 * di * di
                        if atomic:
                            cuda.atomic.add(g, j, pw * 2.0 * dlt * dj)
                            cuda.atomic.add(h, j, pw * 2.0 * dj * dj)
                        else:
                            g[j] += pw * 2.0 * dlt * dj
                            h[j] += pw * 2.0 * dj * dj
                else:
                    sv, dv = sigmoid_and_deriv(zj - zi + m)
                    g[i] -= pw * sv
                    h[i] += pw * dv
                    if atomic:
                        cuda.atomic.add(g, j, pw * sv)
                        cuda.atomic.add(h, j, pw * dv)
                    else:
                        g[j] += pw * sv
                        h[j] += pw * dv

    # ---------------------------------------------------------------- kernels
    @cuda.jit
    def bce_kernel(z, y, w, has_w, floor, g, h):
        i = cuda.grid(1)
        if i < g.size:
            p, d = sigmoid_and_deriv(float(z[i]))
            c = 1.0 if y[i] >= 1 else 0.0
            wi = w[i] if has_w else 1.0
            g[i] = wi * (p - c)
            hh = wi * d
            h[i] = hh if hh > floor else floor

    @cuda.jit
    def group_kernel(z, w, has_w, perm, aptr, anP, anC, pptr, big, sc_c, sc_n, m1, m2, loss_kind, k, key,
                     g, h, sp, si, tp, ti, pa, pb, bw, bwp):
        a = cuda.grid(1)
        if a >= anP.size or big[a] != 0:
            return
        s = aptr[a]
        e = aptr[a + 1]
        nP = anP[a]
        nC = anC[a]
        if k > 0:
            for t in range(s, s + nP):
                sampled_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, loss_kind, k, key,
                                   t, g, h, False)
        elif loss_kind == SQ:
            sq_hinge_group(z, w, has_w, perm, s, nP, nC, e, pptr[a], pptr[a] + a, sc_c, sc_n, m1, m2,
                           g, h, sp, si, tp, ti, pa, pb, bw, bwp)
        else:
            # the CPU's order: conversions one after another, each adding to its partners
            for t in range(s, s + nP):
                i = perm[t]
                zi = float(z[i])
                wi = weight(w, has_w, i)
                gi = 0.0
                hi = 0.0
                for u in range(s + nP, e):
                    if u < s + nP + nC:
                        m = m1
                        sc = sc_c
                    else:
                        m = m2
                        sc = sc_n
                    j = perm[u]
                    sv, dv = sigmoid_and_deriv(float(z[j]) - zi + m)
                    pw = sc * wi * weight(w, has_w, j)
                    gi -= pw * sv
                    hi += pw * dv
                    g[j] += pw * sv
                    h[j] += pw * dv
                g[i] += gi
                h[i] += hi

    # row-parallel kernels for large groups: one thread per position of lpos (group lgrp)
    @cuda.jit
    def big_fill_kernel(z, perm, aptr, anP, pptr, lpos, lgrp, sp, si):
        x = cuda.grid(1)
        if x >= lpos.size:
            return
        a = lgrp[x]
        t = lpos[x]
        q = t - aptr[a]
        if q < anP[a]:
            r = perm[t]
            sp[pptr[a] + q] = sigmoid_and_deriv(float(z[r]))[0]
            si[pptr[a] + q] = r

    @cuda.jit
    def big_merge_kernel(aptr, anP, pptr, lpos, lgrp, width, src_p, src_i, dst_p, dst_i):
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

    @cuda.jit
    def big_prefix_kernel(w, has_w, anP, pptr, big, sp, si, pa, pb, bw, bwp):
        a = cuda.grid(1)
        if a >= anP.size or big[a] == 0:
            return
        nP = anP[a]
        po = pptr[a]
        bo = po + a
        pa[bo] = 0.0
        pb[bo] = 0.0
        for q in range(nP):
            wi = weight(w, has_w, si[po + q])
            pa[bo + q + 1] = pa[bo + q] + wi
            pb[bo + q + 1] = pb[bo + q] + wi * sp[po + q]
        for q in range(nP + 1):
            bw[0, bo + q] = 0.0
            bw[1, bo + q] = 0.0
            bwp[0, bo + q] = 0.0
            bwp[1, bo + q] = 0.0

    @cuda.jit
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
        if t < s + nP + anC[a]:
            term = 0
            m = m1
            sc = sc_c
        else:
            term = 1
            m = m2
            sc = sc_n
        if sc == 0.0:
            return
        po = pptr[a]
        bo = po + a
        j = perm[t]
        pj, dj = sigmoid_and_deriv(float(z[j]))
        lo = 0
        hi = nP
        while lo < hi:
            mid = (lo + hi) >> 1
            if (pj - sp[po + mid]) + m > 0.0:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            wj = weight(w, has_w, j)
            A = pa[bo + lo]
            B = pb[bo + lo]
            g[j] += sc * 2.0 * wj * dj * ((pj + m) * A - B)
            h[j] += sc * 2.0 * wj * dj * dj * A
            cuda.atomic.add(bw, (term, bo + lo), wj)
            cuda.atomic.add(bwp, (term, bo + lo), wj * pj)

    @cuda.jit
    def big_sq_suffix_kernel(z, w, has_w, aptr, anP, anC, pptr, big, sc_c, sc_n, m1, m2,
                             sp, si, bw, bwp, g, h):
        a = cuda.grid(1)
        if a >= anP.size or big[a] == 0:
            return
        nP = anP[a]
        nC = anC[a]
        nN = aptr[a + 1] - aptr[a] - nP - nC
        po = pptr[a]
        bo = po + a
        for term in range(2):
            if term == 0:
                nT = nC
                m = m1
                sc = sc_c
            else:
                nT = nN
                m = m2
                sc = sc_n
            if nT == 0 or sc == 0.0:
                continue
            SW = 0.0
            SWP = 0.0
            for q in range(nP - 1, -1, -1):
                SW += bw[term, bo + q + 1]
                SWP += bwp[term, bo + q + 1]
                if SW != 0.0:
                    i = si[po + q]
                    pi = sp[po + q]
                    di = sigmoid_and_deriv(float(z[i]))[1]
                    wi = weight(w, has_w, i)
                    g[i] -= sc * 2.0 * wi * di * (SWP - (pi - m) * SW)
                    h[i] += sc * 2.0 * wi * di * di * SW

    @cuda.jit
    def big_logistic_kernel(z, w, has_w, perm, aptr, anP, anC, lpos, lgrp, sc_c, sc_n, m1, m2, g, h):
        x = cuda.grid(1)
        if x >= lpos.size:
            return
        a = lgrp[x]
        t = lpos[x]
        s = aptr[a]
        nP = anP[a]
        if t < s + nP:
            logistic_conversion(z, w, has_w, perm, s, nP, anC[a], aptr[a + 1], sc_c, sc_n, m1, m2, t, g, h)
        else:
            logistic_partner(z, w, has_w, perm, s, nP, anC[a], sc_c, sc_n, m1, m2, t, g, h)

    @cuda.jit
    def big_sampled_kernel(z, w, has_w, perm, aptr, anP, anC, lpos, lgrp, sc_c, sc_n, m1, m2, loss_kind, k,
                           key, g, h):
        x = cuda.grid(1)
        if x >= lpos.size:
            return
        a = lgrp[x]
        t = lpos[x]
        s = aptr[a]
        nP = anP[a]
        if t < s + nP:
            sampled_conversion(z, w, has_w, perm, s, nP, anC[a], aptr[a + 1], sc_c, sc_n, m1, m2, loss_kind, k,
                               key, t, g, h, True)

    # ---------------------------------------------------------------- entire-space CVR (SPEC §5)
    @cuda.jit
    def esmm_kernel(u, v, a, w, has_w, floor, g, h):
        i = cuda.grid(1)
        if i < g.size:
            ai = a[i]
            ui = float(u[i])
            q, dq = sigmoid_and_deriv(ui)
            one_m_q = sigmoid_and_deriv(-ui)[0]
            one_m_aq = (1.0 - ai) + ai * one_m_q
            wi = w[i] if has_w else 1.0
            if v[i] == 2:
                gi = -one_m_q
            else:
                gi = ai * dq / one_m_aq
            g[i] = wi * gi
            hh = wi * ai * dq * one_m_q / one_m_aq
            h[i] = hh if hh > floor else floor

    @cuda.jit
    def draw_kernel(key, counters, n, out):
        x = cuda.grid(1)
        if x < counters.size:
            out[x] = draw_index(key, counters[x], n)

    return SimpleNamespace(
        bce=bce_kernel, group=group_kernel, big_fill=big_fill_kernel, big_merge=big_merge_kernel,
        big_prefix=big_prefix_kernel, big_sq_partner=big_sq_partner_kernel,
        big_sq_suffix=big_sq_suffix_kernel, big_logistic=big_logistic_kernel,
        big_sampled=big_sampled_kernel, esmm=esmm_kernel, draw=draw_kernel,
    )


# --------------------------------------------------------------------------- device data


def _device_cache(obj: Any) -> dict:
    cache = getattr(obj, "_device_cache", None)
    if cache is None:
        cache = {}
        object.__setattr__(obj, "_device_cache", cache)
    return cache


def _upload(cuda: Any, data: Any) -> dict:
    """Send the fixed per-training arrays to the device (once per PreparedData)."""
    P = int(data.pptr[-1]) if data.pptr.size else 0
    A = int(data.aptr.size - 1)
    return {
        "y": cuda.to_device(np.ascontiguousarray(data.y)) if data.n else cuda.device_array(1, dtype=np.int8),
        "w": cuda.to_device(np.ascontiguousarray(data.w, dtype=np.float64)) if data.has_w and data.n
        else cuda.device_array(1, dtype=np.float64),
        "perm": cuda.to_device(np.ascontiguousarray(data.perm, dtype=np.int64)) if data.perm.size
        else cuda.device_array(1, dtype=np.int64),
        "aptr": cuda.to_device(np.ascontiguousarray(data.aptr, dtype=np.int64)),
        "anP": cuda.to_device(np.ascontiguousarray(data.anP, dtype=np.int64)) if A
        else cuda.device_array(1, dtype=np.int64),
        "anC": cuda.to_device(np.ascontiguousarray(data.anC, dtype=np.int64)) if A
        else cuda.device_array(1, dtype=np.int64),
        "pptr": cuda.to_device(np.ascontiguousarray(data.pptr, dtype=np.int64)),
        "scratch": None,  # allocated on the first round that needs pairs
        "P": P,
        "A": A,
        "layouts": {},
        "z": {},
        "out": None,
    }


def _scratch(cuda: Any, dev: dict) -> tuple:
    if dev["scratch"] is None:
        P1 = max(dev["P"], 1)
        B = dev["P"] + dev["A"]
        dev["scratch"] = (
            cuda.device_array(P1, dtype=np.float64),  # sp
            cuda.device_array(P1, dtype=np.int64),  # si
            cuda.device_array(P1, dtype=np.float64),  # tp (merge-sort ping-pong)
            cuda.device_array(P1, dtype=np.int64),  # ti
            cuda.device_array(B, dtype=np.float64),  # pa
            cuda.device_array(B, dtype=np.float64),  # pb
            cuda.device_array((2, B), dtype=np.float64),  # bw  (per term)
            cuda.device_array((2, B), dtype=np.float64),  # bwp (per term)
        )
    return dev["scratch"]


def _layout(cuda: Any, data: Any, dev: dict, smax: int) -> SimpleNamespace:
    """Which active groups are 'large' (> smax rows) and their rows' positions in perm."""
    lay = dev["layouts"].get(smax)
    if lay is not None:
        return lay
    sizes = np.diff(data.aptr)
    big = (sizes > smax).astype(np.uint8)
    bidx = np.flatnonzero(big)
    if bidx.size:
        lens = sizes[bidx]
        lgrp = np.repeat(bidx.astype(np.int64), lens)
        first = np.repeat(np.cumsum(lens) - lens, lens)
        lpos = np.repeat(data.aptr[bidx], lens) + (np.arange(lgrp.size, dtype=np.int64) - first)
        max_p = int(data.anP[bidx].max())
    else:
        lgrp = lpos = np.zeros(0, dtype=np.int64)
        max_p = 0
    lay = SimpleNamespace(
        big=cuda.to_device(big) if big.size else cuda.device_array(1, dtype=np.uint8),
        n_big=int(bidx.size),
        lpos=cuda.to_device(lpos) if lpos.size else None,
        lgrp=cuda.to_device(lgrp) if lgrp.size else None,
        n_pos=int(lpos.size),
        max_p=max_p,
    )
    dev["layouts"][smax] = lay
    return lay


def _margin(cuda: Any, z: Any, dev: dict, n: int) -> Any:
    """Margins on the device: device arrays in place, host arrays via a reused staging buffer."""
    if hasattr(z, "__cuda_array_interface__") or hasattr(z, "copy_to_host"):
        zd = z if hasattr(z, "copy_to_host") else cuda.as_cuda_array(z)
        if zd.ndim == 2 and zd.shape[1] == 1:
            zd = zd.reshape(zd.shape[0])
        if zd.ndim != 1:
            raise ValueError(f"margin must be 1-D raw scores of shape (n,), got shape {zd.shape}")
        if np.dtype(zd.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"device margin must be float32 or float64, got {zd.dtype}")
    else:
        zh = np.asarray(z)
        if zh.ndim == 2 and zh.shape[1] == 1:
            zh = zh.reshape(-1)
        zh = check_margin(zh)
        buf = dev["z"].get(zh.dtype.str)
        if buf is None or buf.shape[0] != zh.shape[0]:
            buf = cuda.device_array(zh.shape[0], dtype=zh.dtype)
            dev["z"][zh.dtype.str] = buf
        buf.copy_to_device(zh)
        zd = buf
    if zd.shape[0] != n:
        raise ValueError(f"margin has {zd.shape[0]} rows but the training data has {n}")
    return zd


def _outputs(cuda: Any, dev: dict, n: int, reuse: bool) -> tuple[Any, Any]:
    if not reuse:
        return cuda.device_array(n, dtype=np.float64), cuda.device_array(n, dtype=np.float64)
    if dev["out"] is None or dev["out"][0].shape[0] != n:
        dev["out"] = (cuda.device_array(n, dtype=np.float64), cuda.device_array(n, dtype=np.float64))
    return dev["out"]


def _grid(n: int, block: int) -> int:
    return max(1, (n + block - 1) // block)


# --------------------------------------------------------------------------- PWiseR


def pwiser_grad_hess_cuda(obj: Any, z: Any, data: Any, iteration: int, reuse: bool | None = None
                          ) -> tuple[Any, Any]:
    """Gradient and Hessian of BCE + λ·PWiseR on the GPU.

    Parameters
    ----------
    obj : PWiseRObjective
        Supplies λ, the margins, the pair loss, ``pairs``, ``random_state`` and
        ``device`` (``"cuda"`` or ``"cuda:<ordinal>"``).
    z : ndarray or device array of shape (n,)
        Margins: a host numpy array (sent to the device) or anything with
        ``__cuda_array_interface__`` (used in place), float32 or float64.
    data : PreparedData
        From :func:`gbdt_pwiser.prepare_data`; its arrays are sent to the
        device once and cached on it.
    iteration : int
        Boosting round (selects the pairs drawn in sampled mode).
    reuse : bool, optional
        Write into output buffers cached on ``data`` (overwritten next call).
        Default: True when called by the objective's XGBoost/LightGBM adapter
        (``data`` is the adapter's prepared data), else False.

    Returns
    -------
    grad, hess : numba device arrays of shape (n,), float64
        The CPU's values (float64, same accumulation order except in groups
        larger than :func:`serial_max_rows`); ``hess`` floored at 1e-16.

    Raises
    ------
    RuntimeError
        numba-cuda is not installed or no CUDA driver/device is usable.
    """
    lam, m1, m2, loss_kind, k, seed = obj._check_params()
    iteration = int(iteration)
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    cuda = _get_cuda()
    if reuse is None:
        reuse = getattr(obj, "_prepared", None) is data
    ordinal = _ordinal(obj.device)
    with _on_device(cuda, ordinal), _quiet():
        cache = _device_cache(data)
        dev = cache.get(ordinal)
        if dev is None:
            dev = cache[ordinal] = _upload(cuda, data)
        zd = _margin(cuda, z, dev, data.n)
        g, h = _outputs(cuda, dev, data.n, bool(reuse))
        if data.n:
            _pwiser_launch(cuda, data, dev, zd, g, h, lam, m1, m2, loss_kind, k, seed, iteration)
        cuda.synchronize()
    return g, h


def _pwiser_launch(cuda: Any, data: Any, dev: dict, z: Any, g: Any, h: Any, lam: float, m1: float,
                   m2: float, loss_kind: int, k: int, seed: int, iteration: int) -> None:
    """Driver: BCE for every row, then the pair terms of small and large active groups."""
    kern = _kernels()
    tpb = block_size()
    n = data.n
    w, has_w = dev["w"], bool(data.has_w)
    kern.bce[_grid(n, tpb), tpb](z, dev["y"], w, has_w, HESSIAN_FLOOR, g, h)
    A = dev["A"]
    if lam == 0.0 or A == 0:
        return
    sc_c, sc_n = data.scales(lam)
    key = K.round_key(seed, iteration)
    lay = _layout(cuda, data, dev, serial_max_rows())
    sp, si, tp, ti, pa, pb, bw, bwp = _scratch(cuda, dev)
    perm, aptr, anP, anC, pptr = dev["perm"], dev["aptr"], dev["anP"], dev["anC"], dev["pptr"]
    if lay.n_big < A:
        kern.group[_grid(A, tpb), tpb](z, w, has_w, perm, aptr, anP, anC, pptr, lay.big, sc_c, sc_n, m1, m2,
                                       loss_kind, k, key, g, h, sp, si, tp, ti, pa, pb, bw, bwp)
    if lay.n_big == 0:
        return
    lpos, lgrp, gp = lay.lpos, lay.lgrp, _grid(lay.n_pos, tpb)
    if k > 0:
        kern.big_sampled[gp, tpb](z, w, has_w, perm, aptr, anP, anC, lpos, lgrp, sc_c, sc_n, m1, m2,
                                  loss_kind, k, key, g, h)
    elif loss_kind != K.LOSS_SQUARED_HINGE:
        kern.big_logistic[gp, tpb](z, w, has_w, perm, aptr, anP, anC, lpos, lgrp, sc_c, sc_n, m1, m2, g, h)
    else:
        kern.big_fill[gp, tpb](z, perm, aptr, anP, pptr, lpos, lgrp, sp, si)
        src_p, src_i, dst_p, dst_i = sp, si, tp, ti
        width = 1
        while width < lay.max_p:
            kern.big_merge[gp, tpb](aptr, anP, pptr, lpos, lgrp, width, src_p, src_i, dst_p, dst_i)
            src_p, src_i, dst_p, dst_i = dst_p, dst_i, src_p, src_i
            width *= 2
        ga = _grid(A, tpb)
        kern.big_prefix[ga, tpb](w, has_w, anP, pptr, lay.big, src_p, src_i, pa, pb, bw, bwp)
        kern.big_sq_partner[gp, tpb](z, w, has_w, perm, aptr, anP, anC, pptr, lpos, lgrp, sc_c, sc_n, m1, m2,
                                     src_p, pa, pb, bw, bwp, g, h)
        kern.big_sq_suffix[ga, tpb](z, w, has_w, aptr, anP, anC, pptr, lay.big, sc_c, sc_n, m1, m2,
                                    src_p, src_i, bw, bwp, g, h)


def draw_indices_cuda(key: np.uint64, counters: np.ndarray, n: int) -> np.ndarray:
    """The device's counter-based draws (for tests): ``draw_index(key, c, n)`` per counter."""
    cuda = _get_cuda()
    c = np.ascontiguousarray(counters, dtype=np.int64)
    out = cuda.device_array(max(c.size, 1), dtype=np.int64)
    if c.size:
        with _quiet():
            tpb = block_size()
            _kernels().draw[_grid(c.size, tpb), tpb](np.uint64(key), cuda.to_device(c), int(n), out)
    return out.copy_to_host()[: c.size]


# --------------------------------------------------------------------------- entire-space CVR


def esmm_grad_hess_cuda(obj: Any, z: Any, data: Any, a: np.ndarray, reuse: bool | None = None
                        ) -> tuple[Any, Any]:
    """Gradient and Fisher Hessian of the entire-space CVR loss on the GPU (SPEC §5).

    Parameters
    ----------
    obj : EntireSpaceCVRObjective
        Supplies ``device``.
    z : ndarray or device array of shape (n,)
        CVR margins ``u`` (host or ``__cuda_array_interface__``).
    data : object
        With ``n``, ``y`` (funnel labels), ``w`` and ``has_w``; its arrays are
        cached on the device.
    a : ndarray of shape (n,)
        pCTR per row (host, float64); cached on the device while the same
        array object is passed.
    reuse : bool, optional
        As in :func:`pwiser_grad_hess_cuda`.

    Returns
    -------
    grad, hess : numba device arrays of shape (n,), float64
    """
    cuda = _get_cuda()
    if reuse is None:
        reuse = getattr(obj, "_prepared", None) is data
    ordinal = _ordinal(obj.device)
    with _on_device(cuda, ordinal), _quiet():
        cache = _device_cache(data)
        dev = cache.get(ordinal)
        if dev is None:
            dev = cache[ordinal] = {
                "y": cuda.to_device(np.ascontiguousarray(data.y)) if data.n else cuda.device_array(1, np.int8),
                "w": cuda.to_device(np.ascontiguousarray(data.w, dtype=np.float64)) if data.has_w and data.n
                else cuda.device_array(1, dtype=np.float64),
                "a": None, "z": {}, "out": None,
            }
        if dev["a"] is None or dev["a"][0] is not a:
            ah = np.ascontiguousarray(a, dtype=np.float64)
            if ah.shape != (data.n,):
                raise ValueError(f"ctr_prob has shape {ah.shape} but there are {data.n} rows")
            dev["a"] = (a, cuda.to_device(ah) if data.n else cuda.device_array(1, dtype=np.float64))
        zd = _margin(cuda, z, dev, data.n)
        g, h = _outputs(cuda, dev, data.n, bool(reuse))
        if data.n:
            tpb = block_size()
            _kernels().esmm[_grid(data.n, tpb), tpb](zd, dev["y"], dev["a"][1], dev["w"], bool(data.has_w),
                                                     HESSIAN_FLOOR, g, h)
        cuda.synchronize()
    return g, h
