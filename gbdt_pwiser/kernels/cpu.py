"""Numba kernels for BCE + λ·PWiseR (SPEC §2–§4). The loss math lives here only.

Layering (after stumpy): the validated public API in :mod:`gbdt_pwiser.objectives`
prepares the data once (:func:`prepare_ptr` / :func:`prepare_codes`), then every
boosting round calls two ``@njit(parallel=True)`` drivers:

* :func:`bce_pass` — row-parallel BCE gradient/Hessian for every row;
* :func:`pair_pass` — group-parallel pair terms, only over the *active* groups
  (those holding a conversion and at least one partner). Pairs never cross
  groups, so threads never write the same row.

Inside a group the rows of active groups are laid out once per training run in
``perm`` as ``[P (conversions) | C (click-only) | N (non-clicks)]``, so a round
reads no labels and sorts nothing but the group's conversions.

Exact squared hinge (``pairs="all"``): with the conversions sorted by ``p``
ascending, a partner ``j`` is active with conversion ``i`` iff
``(p_j - p_i) + m > 0`` — the same floating-point expression as the naive
double loop, and monotone in ``p_i`` — so its active conversions are a prefix
of length ``r_j`` found by binary search. Prefix sums of ``w_i`` and
``w_i p_i`` give ``j``'s gradient; bucketing ``w_j`` and ``w_j p_j`` at
``r_j`` and taking suffix sums gives every conversion's. Cost
``O(|G| log |P_G|)`` per group, no pair is materialised.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

LOSS_SQUARED_HINGE = 0
LOSS_LOGISTIC = 1

_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# --------------------------------------------------------------------------- scalars


@intrinsic
def _bits_to_float64(typingctx, bits):
    """Reinterpret an int64 bit pattern as a float64 (free; keeps loops vectorisable)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@njit(cache=True, inline="always")
def exp_nonpos(x):
    """exp(x) for x <= 0 without a libm call, so that LLVM can vectorise the loop.

    Cody–Waite reduction ``x = n ln2 + r`` (|r| <= ln2/2), a degree-13 Taylor
    polynomial for exp(r) and 2^n built from its bits; relative error below
    4e-16. Inputs below -708 are clamped (exp(-708) ~ 3e-308 instead of 0, which
    only ever ends up under the Hessian floor).
    """
    x = max(x, -708.0)
    n = math.floor(x * _LOG2E + 0.5)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    q = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
            1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600))))))))))))
    return q * _bits_to_float64((np.int64(n) + 1023) << 52)


@njit(cache=True, inline="always")
def sigmoid_and_deriv(z):
    """Return (σ(z), σ'(z)) for any finite z, branch-free (vectorisable), no overflow."""
    e = exp_nonpos(-abs(z))
    inv = 1.0 / (1.0 + e)
    p = inv if z >= 0.0 else e * inv
    return p, e * inv * inv


@njit(cache=True, inline="always")
def log1pexp(x):
    """log(1 + exp(x)) without overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True, inline="always")
def mix64(x):
    """SplitMix64 finaliser (uint64 -> uint64)."""
    x = (x ^ (x >> _U30)) * _M1
    x = (x ^ (x >> _U27)) * _M2
    return x ^ (x >> _U31)


@njit(cache=True, inline="always")
def draw_index(key, counter, n):
    """Counter-based uniform integer in [0, n): the same on every thread/device."""
    u = mix64(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    return np.int64(((u >> _U32) * np.uint64(n)) >> _U32)


def round_key(seed: int, iteration: int) -> np.uint64:
    """64-bit key of one boosting round, derived from (random_state, iteration)."""
    mask = (1 << 64) - 1

    def _mix(x: int) -> int:
        x &= mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    return np.uint64(_mix(_mix(seed + 0x9E3779B97F4A7C15) + iteration * 0x9E3779B97F4A7C15 + 1))


# --------------------------------------------------------------------------- preparation


@njit(cache=True)
def _class_of(label):
    # 0 = P (conversion), 1 = C (click-only), 2 = N (non-click)
    if label == 2:
        return 0
    if label == 1:
        return 1
    return 2


@njit(parallel=True, cache=True)
def group_stats_ptr(y, w, has_w, gptr):
    """Per-group counts and weight sums of P, C, N for contiguous groups."""
    G = gptr.size - 1
    counts = np.zeros((G, 3), dtype=np.int64)
    wsum = np.zeros((G, 3), dtype=np.float64)
    for gi in prange(G):
        for r in range(gptr[gi], gptr[gi + 1]):
            c = _class_of(y[r])
            counts[gi, c] += 1
            wsum[gi, c] += w[r] if has_w else 1.0
    return counts, wsum


@njit(cache=True)
def group_stats_codes(y, w, has_w, codes, G):
    """Per-group counts and weight sums of P, C, N for arbitrary group codes."""
    counts = np.zeros((G, 3), dtype=np.int64)
    wsum = np.zeros((G, 3), dtype=np.float64)
    for r in range(y.size):
        c = _class_of(y[r])
        gi = codes[r]
        counts[gi, c] += 1
        wsum[gi, c] += w[r] if has_w else 1.0
    return counts, wsum


@njit(parallel=True, cache=True)
def fill_perm_ptr(y, gptr, active, aptr, counts, perm):
    """Lay out the rows of active groups as [P | C | N] (stable) in ``perm``."""
    for a in prange(active.size):
        gi = active[a]
        o0 = aptr[a]
        o1 = o0 + counts[gi, 0]
        o2 = o1 + counts[gi, 1]
        for r in range(gptr[gi], gptr[gi + 1]):
            c = _class_of(y[r])
            if c == 0:
                perm[o0] = r
                o0 += 1
            elif c == 1:
                perm[o1] = r
                o1 += 1
            else:
                perm[o2] = r
                o2 += 1


@njit(cache=True)
def fill_perm_codes(y, codes, slot, aptr, counts, active, perm):
    """Same as :func:`fill_perm_ptr` for arbitrary codes; ``slot[g]`` = active index or -1."""
    A = active.size
    off = np.empty((A, 3), dtype=np.int64)
    for a in range(A):
        gi = active[a]
        off[a, 0] = aptr[a]
        off[a, 1] = aptr[a] + counts[gi, 0]
        off[a, 2] = off[a, 1] + counts[gi, 1]
    for r in range(y.size):
        a = slot[codes[r]]
        if a >= 0:
            c = _class_of(y[r])
            perm[off[a, c]] = r
            off[a, c] += 1


# --------------------------------------------------------------------------- BCE


@njit(parallel=True, cache=True)
def bce_pass(z, y, w, has_w, floor, g, h):
    """g = w (p - c), h = max(w σ', floor) for every row (c = click = y >= 1)."""
    for i in prange(z.size):
        p, d = sigmoid_and_deriv(np.float64(z[i]))
        c = 1.0 if y[i] >= 1 else 0.0
        wi = w[i] if has_w else 1.0
        g[i] = wi * (p - c)
        hh = wi * d
        h[i] = hh if hh > floor else floor


@njit(parallel=True, cache=True)
def bce_loss(z, y, w, has_w):
    total = 0.0
    for i in prange(z.size):
        zi = np.float64(z[i])
        c = 1.0 if y[i] >= 1 else 0.0
        wi = w[i] if has_w else 1.0
        total += wi * (log1pexp(zi) - c * zi)
    return total


# --------------------------------------------------------------------------- group kernels


@njit(cache=True, inline="always")
def _weight(w, has_w, r):
    return w[r] if has_w else 1.0


@njit(cache=True)
def _sort_conversions(sp, si, lo, n):
    """Sort sp[lo:lo+n] ascending, carrying si along (insertion sort or argsort)."""
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
    else:
        order = np.argsort(sp[lo : lo + n], kind="mergesort")
        tp = sp[lo : lo + n][order]
        ti = si[lo : lo + n][order]
        sp[lo : lo + n] = tp
        si[lo : lo + n] = ti


@njit(cache=True)
def _sq_hinge_group(z, w, has_w, perm, s, nP, nC, e, po, bo, sc_c, sc_n, m1, m2,
                    g, h, sp, si, pa, pb, bw, bwp):
    # conversions sorted by p, with prefix sums of w and w p
    for q in range(nP):
        r = perm[s + q]
        sp[po + q] = sigmoid_and_deriv(np.float64(z[r]))[0]
        si[po + q] = r
    _sort_conversions(sp, si, po, nP)
    pa[bo] = 0.0
    pb[bo] = 0.0
    for q in range(nP):
        wi = _weight(w, has_w, si[po + q])
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
            bw[bo + q] = 0.0
            bwp[bo + q] = 0.0
        for t in range(js, je):
            j = perm[t]
            pj, dj = sigmoid_and_deriv(np.float64(z[j]))
            # r = number of conversions i with (p_j - p_i) + m > 0 (a prefix)
            lo = 0
            hi = nP
            while lo < hi:
                mid = (lo + hi) >> 1
                if (pj - sp[po + mid]) + m > 0.0:
                    lo = mid + 1
                else:
                    hi = mid
            if lo > 0:
                wj = _weight(w, has_w, j)
                A = pa[bo + lo]
                B = pb[bo + lo]
                g[j] += sc * 2.0 * wj * dj * ((pj + m) * A - B)
                h[j] += sc * 2.0 * wj * dj * dj * A
                bw[bo + lo] += wj
                bwp[bo + lo] += wj * pj
        SW = 0.0
        SWP = 0.0
        for q in range(nP - 1, -1, -1):
            SW += bw[bo + q + 1]
            SWP += bwp[bo + q + 1]
            if SW != 0.0:
                i = si[po + q]
                pi = sp[po + q]
                di = sigmoid_and_deriv(np.float64(z[i]))[1]
                wi = _weight(w, has_w, i)
                g[i] -= sc * 2.0 * wi * di * (SWP - (pi - m) * SW)
                h[i] += sc * 2.0 * wi * di * di * SW


@njit(cache=True)
def _logistic_group(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, g, h):
    for q in range(nP):
        i = perm[s + q]
        zi = np.float64(z[i])
        wi = _weight(w, has_w, i)
        gi = 0.0
        hi = 0.0
        for t in range(s + nP, e):
            if t < s + nP + nC:
                m = m1
                sc = sc_c
            else:
                m = m2
                sc = sc_n
            j = perm[t]
            sv, dv = sigmoid_and_deriv(np.float64(z[j]) - zi + m)
            pw = sc * wi * _weight(w, has_w, j)
            gi -= pw * sv
            hi += pw * dv
            g[j] += pw * sv
            h[j] += pw * dv
        g[i] += gi
        h[i] += hi


@njit(cache=True)
def _sampled_group(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, loss_kind, k, key, g, h):
    nN = e - s - nP - nC
    for q in range(nP):
        i = perm[s + q]
        zi = np.float64(z[i])
        pi, di = sigmoid_and_deriv(zi)
        wi = _weight(w, has_w, i)
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
                pw = fac * _weight(w, has_w, j)
                zj = np.float64(z[j])
                if loss_kind == LOSS_SQUARED_HINGE:
                    pj, dj = sigmoid_and_deriv(zj)
                    dlt = (pj - pi) + m
                    if dlt > 0.0:
                        g[i] -= pw * 2.0 * dlt * di
                        g[j] += pw * 2.0 * dlt * dj
                        h[i] += pw * 2.0 * di * di
                        h[j] += pw * 2.0 * dj * dj
                else:
                    sv, dv = sigmoid_and_deriv(zj - zi + m)
                    g[i] -= pw * sv
                    g[j] += pw * sv
                    h[i] += pw * dv
                    h[j] += pw * dv


# --------------------------------------------------------------------------- drivers


@njit(parallel=True, cache=True)
def pair_pass(z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
              g, h, sp, si, pa, pb, bw, bwp):
    """Add the λ·PWiseR gradient/Hessian of every active group to g, h."""
    A = aptr.size - 1
    for a in prange(A):
        s = aptr[a]
        e = aptr[a + 1]
        nP = anP[a]
        nC = anC[a]
        if k > 0:
            _sampled_group(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, loss_kind, k, key, g, h)
        elif loss_kind == LOSS_SQUARED_HINGE:
            _sq_hinge_group(z, w, has_w, perm, s, nP, nC, e, pptr[a], pptr[a] + a, sc_c, sc_n, m1, m2,
                            g, h, sp, si, pa, pb, bw, bwp)
        else:
            _logistic_group(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, g, h)


@njit(cache=True)
def _sq_hinge_group_loss(z, w, has_w, perm, s, nP, nC, e, m1, m2):
    """Σ over the group's pairs of w_i w_j φ, per term, O(|G| log |P|)."""
    sp = np.empty(nP)
    si = np.empty(nP, dtype=np.int64)
    for q in range(nP):
        r = perm[s + q]
        sp[q] = sigmoid_and_deriv(np.float64(z[r]))[0]
        si[q] = r
    _sort_conversions(sp, si, 0, nP)
    pa = np.zeros(nP + 1)
    pb = np.zeros(nP + 1)
    pc = np.zeros(nP + 1)
    for q in range(nP):
        wi = _weight(w, has_w, si[q])
        pa[q + 1] = pa[q] + wi
        pb[q + 1] = pb[q] + wi * sp[q]
        pc[q + 1] = pc[q] + wi * sp[q] * sp[q]
    out_c = 0.0
    out_n = 0.0
    for t in range(s + nP, e):
        m = m1 if t < s + nP + nC else m2
        j = perm[t]
        pj = sigmoid_and_deriv(np.float64(z[j]))[0]
        lo = 0
        hi = nP
        while lo < hi:
            mid = (lo + hi) >> 1
            if (pj - sp[mid]) + m > 0.0:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            u = pj + m
            v = _weight(w, has_w, j) * (u * u * pa[lo] - 2.0 * u * pb[lo] + pc[lo])
            if v < 0.0:
                v = 0.0
            if t < s + nP + nC:
                out_c += v
            else:
                out_n += v
    return out_c, out_n


@njit(parallel=True, cache=True)
def pair_loss_sums(z, w, has_w, perm, aptr, anP, anC, m1, m2, loss_kind):
    """Per-term sums Σ w_i w_j φ(i, j) over all active groups (exact)."""
    A = aptr.size - 1
    out = np.zeros((A, 2))
    for a in prange(A):
        s = aptr[a]
        e = aptr[a + 1]
        nP = anP[a]
        nC = anC[a]
        if loss_kind == LOSS_SQUARED_HINGE:
            c, n = _sq_hinge_group_loss(z, w, has_w, perm, s, nP, nC, e, m1, m2)
            out[a, 0] = c
            out[a, 1] = n
        else:
            for q in range(nP):
                i = perm[s + q]
                zi = np.float64(z[i])
                wi = _weight(w, has_w, i)
                for t in range(s + nP, e):
                    j = perm[t]
                    if t < s + nP + nC:
                        out[a, 0] += wi * _weight(w, has_w, j) * log1pexp(np.float64(z[j]) - zi + m1)
                    else:
                        out[a, 1] += wi * _weight(w, has_w, j) * log1pexp(np.float64(z[j]) - zi + m2)
    return out[:, 0].sum(), out[:, 1].sum()


# --------------------------------------------------------------------------- entire-space CVR (SPEC §5)


@njit(cache=True, inline="always")
def _esmm_terms(u, a):
    """q = σ(u), 1 - q and 1 - a q computed without cancellation."""
    q, dq = sigmoid_and_deriv(u)
    one_m_q = sigmoid_and_deriv(-u)[0]
    one_m_aq = (1.0 - a) + a * one_m_q
    return q, dq, one_m_q, one_m_aq


@njit(parallel=True, cache=True)
def esmm_pass(u, v, a, w, has_w, floor, g, h):
    """Gradient and Fisher Hessian of BCE(a·σ(u), v) w.r.t. the CVR margin u.

    grad = -v (1 - q) + (1 - v) a q (1 - q) / (1 - a q)
    hess = a q (1 - q)² / (1 - a q)   (Fisher information of the Bernoulli(a q)
    likelihood in u: non-negative; equals q (1 - q) when a = 1)
    """
    for i in prange(u.size):
        ai = a[i]
        q, dq, one_m_q, one_m_aq = _esmm_terms(np.float64(u[i]), ai)
        wi = w[i] if has_w else 1.0
        if v[i] == 2:
            gi = -one_m_q
        else:
            gi = ai * dq / one_m_aq
        g[i] = wi * gi
        hh = wi * ai * dq * one_m_q / one_m_aq
        h[i] = hh if hh > floor else floor


@njit(parallel=True, cache=True)
def esmm_loss(u, v, a, w, has_w):
    total = 0.0
    for i in prange(u.size):
        ai = a[i]
        ui = np.float64(u[i])
        q, dq, one_m_q, one_m_aq = _esmm_terms(ui, ai)
        wi = w[i] if has_w else 1.0
        if v[i] == 2:
            # -log(a q) = -log a + log(1 + exp(-u))
            total += wi * (-math.log(ai) + log1pexp(-ui))
        else:
            total += wi * (-math.log(one_m_aq))
    return total
