"""The one source of the per-row and per-group mathematics (docs/mathematics.md §2–§5).

Every function here is plain Python registered (like
:func:`numba.extending.register_jitable`, see :func:`_shared`) for the CPU and the CUDA target, so that the same text is compiled by
``@njit`` (the CPU drivers in :mod:`gbdt_pwiser.kernels.cpu`), by ``cuda.jit``
(the kernels in :mod:`gbdt_pwiser.kernels.cuda`) and run as Python by numba's
CUDA simulator. A loss change is made here once.

Where the targets genuinely differ there is one name with one body per target
(:func:`numba.extending.overload` with ``target="cpu"`` / ``target="cuda"``,
and the Python body for the simulator):

* :func:`pow2_scale` — ``q·2**n``: on the CPU from the float's bits (no libm
  call, so LLVM vectorises the row loops), on CUDA by libdevice ``ldexp``;
  both exact for the normal results used here.
* :func:`add_at` — ``arr[j] += v``, with ``cuda.atomic.add`` on CUDA when the
  caller says that several threads may write ``j`` (the row-parallel kernels
  of large groups); the CPU never needs it (one thread per group).

The row-parallel kernels of large groups (CUDA only) are built from the same
pieces: :func:`sq_hinge_partner`, :func:`sq_hinge_suffix`,
:func:`conversion_prefix`, :func:`logistic_conversion`,
:func:`logistic_partner` and :func:`sampled_conversion`.

Exact squared hinge (``pairs="all"``): with the conversions of a group sorted
by ``p`` ascending, a partner ``j`` is active with conversion ``i`` iff
``(p_j - p_i) + m > 0`` — monotone in ``p_i`` — so its active conversions are
a prefix of length ``r_j`` (binary search). Prefix sums of ``w_i`` and
``w_i p_i`` give ``j``'s gradient; bucketing ``w_j`` and ``w_j p_j`` at ``r_j``
and taking suffix sums gives every conversion's: ``O(|G| log |P_G|)``.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

LOSS_SQUARED_HINGE = 0
LOSS_LOGISTIC = 1

_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_ONE = np.uint64(1)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10

#: Conversions sorted by insertion sort up to this many, by a stable merge sort above.
INSERTION_SORT_MAX = 32


def _shared(fn):
    """Register ``fn`` for both targets: inlined in Numba IR on the CPU (as the CPU kernels always
    were: keeps the row loops vectorisable and the group loops free of calls), left to NVVM's
    inliner on CUDA (numba-cuda's IR inliner mistypes them; ``tests/gpu/test_gpu_compile.py``)."""

    def body(*args):
        return fn

    overload(fn, target="cpu", inline="always", strict=False)(body)
    overload(fn, target="cuda", strict=False)(body)
    return fn


_scalar = _shared


# --------------------------------------------------------------------------- per-target helpers


@intrinsic
def _bits_to_float64(typingctx, bits):
    """Reinterpret an int64 bit pattern as a float64 (CPU: free, keeps loops vectorisable)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


def pow2_scale(q, n):
    """``q * 2**n`` for an integral float ``n`` >= -1021 (a normal result): exact."""
    return math.ldexp(q, int(n))


@overload(pow2_scale, target="cpu", inline="always")
def _pow2_scale_cpu(q, n):
    def impl(q, n):
        return q * _bits_to_float64((np.int64(n) + 1023) << 52)

    return impl


@overload(pow2_scale, target="cuda")
def _pow2_scale_cuda(q, n):
    def impl(q, n):  # libdevice ldexp(double, int32); math.floor gives a float64 on CUDA
        return math.ldexp(q, np.int32(n))

    return impl


_SIM_LOCK = threading.Lock()


def add_at(arr, j, v, atomic):
    """``arr[j] += v``; atomic on CUDA when ``atomic`` (threads share ``j``)."""
    if atomic:  # the CUDA simulator runs threads as Python threads
        with _SIM_LOCK:
            arr[j] += v
    else:
        arr[j] += v


@overload(add_at, target="cpu", inline="always")
def _add_at_cpu(arr, j, v, atomic):
    def impl(arr, j, v, atomic):  # one thread per group: never contended
        arr[j] += v

    return impl


@overload(add_at, target="cuda")
def _add_at_cuda(arr, j, v, atomic):
    def impl(arr, j, v, atomic):
        if atomic:
            numba.cuda.atomic.add(arr, j, v)
        else:
            arr[j] += v

    return impl


# --------------------------------------------------------------------------- scalars


@_scalar
def exp_nonpos(x):
    """exp(x) for x <= 0 without a libm call.

    Cody–Waite reduction ``x = n ln2 + r`` (|r| <= ln2/2), a degree-13 Taylor
    polynomial for exp(r) and :func:`pow2_scale`; relative error below 4e-16.
    Inputs below -708 are clamped (exp(-708) ~ 3e-308 instead of 0, which only
    ever ends up under the Hessian floor).
    """
    x = max(x, -708.0)
    n = math.floor(x * _LOG2E + 0.5)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    q = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
            1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600))))))))))))
    return pow2_scale(q, n)


@_scalar
def sigmoid_and_deriv(z):
    """Return (σ(z), σ'(z)) for any finite z, branch-free, no overflow."""
    e = exp_nonpos(-abs(z))
    inv = 1.0 / (1.0 + e)
    p = inv if z >= 0.0 else e * inv
    return p, e * inv * inv


@_scalar
def log1pexp(x):
    """log(1 + exp(x)) without overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@_scalar
def mix64(x):
    """SplitMix64 finaliser (uint64 -> uint64)."""
    x = (x ^ (x >> _U30)) * _M1
    x = (x ^ (x >> _U27)) * _M2
    return x ^ (x >> _U31)


@_scalar
def draw_index(key, counter, n):
    """Counter-based uniform integer in [0, n): the same on every thread and device."""
    u = mix64(key + (np.uint64(counter) + _ONE) * _GOLDEN)
    return np.int64(((u >> _U32) * np.uint64(n)) >> _U32)


@_scalar
def weight(w, has_w, r):
    return w[r] if has_w else 1.0


@_scalar
def bce_row(zi, yi, wi, floor):
    """BCE gradient w (p - c) and floored Hessian max(w σ', floor) of one row (c = y >= 1)."""
    p, d = sigmoid_and_deriv(zi)
    c = 1.0 if yi >= 1 else 0.0
    hh = wi * d
    return wi * (p - c), (hh if hh > floor else floor)


@_scalar
def esmm_terms(u, a):
    """q = σ(u), σ'(u), 1 - q and 1 - a q computed without cancellation."""
    q, dq = sigmoid_and_deriv(u)
    one_m_q = sigmoid_and_deriv(-u)[0]
    one_m_aq = (1.0 - a) + a * one_m_q
    return q, dq, one_m_q, one_m_aq


@_scalar
def esmm_row(ui, vi, ai, wi, floor):
    """Gradient and Fisher Hessian of BCE(a·σ(u), v) w.r.t. the CVR margin u (docs/mathematics.md §5).

    grad = -v (1 - q) + (1 - v) a q (1 - q) / (1 - a q);
    hess = a q (1 - q)² / (1 - a q), floored.
    """
    q, dq, one_m_q, one_m_aq = esmm_terms(ui, ai)
    if vi == 2:
        gi = -one_m_q
    else:
        gi = ai * dq / one_m_aq
    hh = wi * ai * dq * one_m_q / one_m_aq
    return wi * gi, (hh if hh > floor else floor)


@_scalar
def partner_term(t, s, nP, nC, m1, m2, sc_c, sc_n):
    """(margin, scale) of the partner at position t: click-only (term 0) or non-click (term 1)."""
    if t < s + nP + nC:
        return m1, sc_c
    return m2, sc_n


@_scalar
def count_active(sp, po, nP, pj, m):
    """Number of sorted conversions i with (p_j - p_i) + m > 0 (a prefix)."""
    lo = 0
    hi = nP
    while lo < hi:
        mid = (lo + hi) >> 1
        if (pj - sp[po + mid]) + m > 0.0:
            lo = mid + 1
        else:
            hi = mid
    return lo


# --------------------------------------------------------------------------- sorting


@_shared
def merge_runs(ap, ai, bp, bi, lo, left, mid, right):
    """Stable merge of runs [left, mid) and [mid, right) of ap/ai (offset lo) into bp/bi."""
    x = left
    y = mid
    o = left
    while x < mid and y < right:
        if ap[lo + y] < ap[lo + x]:  # a right element goes first only if strictly smaller
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


@_shared
def sort_conversions(sp, si, tp, ti, lo, n):
    """Stable sort of sp[lo:lo+n] ascending, carrying si (tp/ti: scratch of the same layout)."""
    if n <= INSERTION_SORT_MAX:
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


# --------------------------------------------------------------------------- exact squared hinge


@_shared
def load_conversion(z, perm, s, q, sp, si, po):
    """sp[po+q] = p of the group's q-th conversion, si[po+q] = its row."""
    r = perm[s + q]
    sp[po + q] = sigmoid_and_deriv(np.float64(z[r]))[0]
    si[po + q] = r


@_shared
def conversion_prefix(w, has_w, sp, si, po, bo, nP, pa, pb):
    """Prefix sums of w_i and w_i p_i over the sorted conversions (pa[bo] = pb[bo] = 0)."""
    pa[bo] = 0.0
    pb[bo] = 0.0
    for q in range(nP):
        wi = weight(w, has_w, si[po + q])
        pa[bo + q + 1] = pa[bo + q] + wi
        pb[bo + q + 1] = pb[bo + q] + wi * sp[po + q]


@_shared
def sq_hinge_partner(z, w, has_w, j, sp, po, nP, pa, pb, bo, bw, bwp, bb, m, sc, g, h, atomic):
    """Partner j's own gradient/Hessian; its w_j and w_j p_j go to bucket bb + r_j."""
    pj, dj = sigmoid_and_deriv(np.float64(z[j]))
    r = count_active(sp, po, nP, pj, m)
    if r > 0:
        wj = weight(w, has_w, j)
        A = pa[bo + r]
        B = pb[bo + r]
        g[j] += sc * 2.0 * wj * dj * ((pj + m) * A - B)
        h[j] += sc * 2.0 * wj * dj * dj * A
        add_at(bw, bb + r, wj, atomic)
        add_at(bwp, bb + r, wj * pj, atomic)


@_shared
def sq_hinge_suffix(z, w, has_w, sp, si, po, nP, bw, bwp, bb, m, sc, g, h):
    """The conversions' gradient/Hessian from the suffix sums of the partners' buckets."""
    SW = 0.0
    SWP = 0.0
    for q in range(nP - 1, -1, -1):
        SW += bw[bb + q + 1]
        SWP += bwp[bb + q + 1]
        if SW != 0.0:
            i = si[po + q]
            pi = sp[po + q]
            di = sigmoid_and_deriv(np.float64(z[i]))[1]
            wi = weight(w, has_w, i)
            g[i] -= sc * 2.0 * wi * di * (SWP - (pi - m) * SW)
            h[i] += sc * 2.0 * wi * di * di * SW


@_shared
def sq_hinge_group(z, w, has_w, perm, s, nP, nC, e, po, bo, sc_c, sc_n, m1, m2,
                   g, h, sp, si, tp, ti, pa, pb, bw, bwp):
    """Exact squared hinge of one group, O(|G| log |P|); buckets bw/bwp at offset bo."""
    for q in range(nP):
        load_conversion(z, perm, s, q, sp, si, po)
    sort_conversions(sp, si, tp, ti, po, nP)
    conversion_prefix(w, has_w, sp, si, po, bo, nP, pa, pb)
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
            bw[bo + q] = 0.0
            bwp[bo + q] = 0.0
        for t in range(js, je):
            sq_hinge_partner(z, w, has_w, perm[t], sp, po, nP, pa, pb, bo, bw, bwp, bo, m, sc, g, h, False)
        sq_hinge_suffix(z, w, has_w, sp, si, po, nP, bw, bwp, bo, m, sc, g, h)


# --------------------------------------------------------------------------- exact logistic


@_shared
def logistic_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, t, g, h, to_partners):
    """Conversion at position t against all its partners (adding to theirs when to_partners)."""
    i = perm[t]
    zi = np.float64(z[i])
    wi = weight(w, has_w, i)
    gi = 0.0
    hi = 0.0
    for u in range(s + nP, e):
        m, sc = partner_term(u, s, nP, nC, m1, m2, sc_c, sc_n)
        j = perm[u]
        sv, dv = sigmoid_and_deriv(np.float64(z[j]) - zi + m)
        pw = sc * wi * weight(w, has_w, j)
        gi -= pw * sv
        hi += pw * dv
        if to_partners:
            g[j] += pw * sv
            h[j] += pw * dv
    g[i] += gi
    h[i] += hi


@_shared
def logistic_partner(z, w, has_w, perm, s, nP, nC, sc_c, sc_n, m1, m2, t, g, h):
    """Partner at position t against all conversions (the CPU's accumulation order)."""
    m, sc = partner_term(t, s, nP, nC, m1, m2, sc_c, sc_n)
    j = perm[t]
    zj = np.float64(z[j])
    wj = weight(w, has_w, j)
    gj = g[j]
    hj = h[j]
    for q in range(nP):
        i = perm[s + q]
        sv, dv = sigmoid_and_deriv(zj - np.float64(z[i]) + m)
        pw = sc * weight(w, has_w, i) * wj
        gj += pw * sv
        hj += pw * dv
    g[j] = gj
    h[j] = hj


# --------------------------------------------------------------------------- sampled pairs


@_shared
def sampled_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, loss_kind, k, key,
                       t, g, h, atomic):
    """k drawn partners per term for the conversion at position t (counter (i*2+term)*k+draw)."""
    nN = e - s - nP - nC
    i = perm[t]
    zi = np.float64(z[i])
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
            zj = np.float64(z[j])
            if loss_kind == LOSS_SQUARED_HINGE:
                pj, dj = sigmoid_and_deriv(zj)
                dlt = (pj - pi) + m
                if dlt > 0.0:
                    g[i] -= pw * 2.0 * dlt * di
                    h[i] += pw * 2.0 * di * di
                    add_at(g, j, pw * 2.0 * dlt * dj, atomic)
                    add_at(h, j, pw * 2.0 * dj * dj, atomic)
            else:
                sv, dv = sigmoid_and_deriv(zj - zi + m)
                g[i] -= pw * sv
                h[i] += pw * dv
                add_at(g, j, pw * sv, atomic)
                add_at(h, j, pw * dv, atomic)


# --------------------------------------------------------------------------- one active group


@_shared
def pair_group(a, z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
               g, h, sp, si, tp, ti, pa, pb, bw, bwp):
    """Add the λ·PWiseR gradient/Hessian of active group a to g, h (one thread, CPU order)."""
    s = aptr[a]
    e = aptr[a + 1]
    nP = anP[a]
    nC = anC[a]
    if k > 0:
        for t in range(s, s + nP):
            sampled_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, loss_kind, k, key,
                               t, g, h, False)
    elif loss_kind == LOSS_SQUARED_HINGE:
        sq_hinge_group(z, w, has_w, perm, s, nP, nC, e, pptr[a], pptr[a] + a, sc_c, sc_n, m1, m2,
                       g, h, sp, si, tp, ti, pa, pb, bw, bwp)
    else:
        for t in range(s, s + nP):
            logistic_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, t, g, h, True)
