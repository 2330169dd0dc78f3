"""CPU drivers of the kernels (docs/mathematics.md §2–§5): Numba loops over rows and groups.

The mathematics of a row and of a group is in :mod:`gbdt_pwiser.kernels.scalars` and
:mod:`gbdt_pwiser.kernels.groups` (one source for the CPU and the CUDA kernels, with the
argument groups ``Rows``, ``Groups``, ``Pairs`` and ``Scratch``); this module holds the drivers
and the CPU-only parts (data preparation, the loss values).

Layering (after stumpy): the validated public API in :mod:`gbdt_pwiser.objectives`
prepares the data once (:func:`prepare_ptr` / :func:`prepare_codes`, plain loops),
then every boosting round calls either

* :func:`bce_pair_pass` — for contiguous groups on one thread: chunk by chunk, the
  chunk's BCE terms (:func:`bce_rows_pd`, storing p and σ' = p(1 - p) of its rows)
  and then its active groups' pair terms, while its rows are in cache; or
* :func:`bce_pass_pd` (row-parallel) then :func:`pair_pass` (group-parallel, over
  the *active* groups: a conversion and at least one partner), with p and σ' of
  every row in between; :func:`bce_pass` alone when λ = 0.

A group's pair terms are one call, :func:`~gbdt_pwiser.kernels.groups.pair_group`
(the same function the CUDA group kernel calls; here its group function is chosen
while compiling and inlined: the parallel pass calls one function per block of
GROUP_BLOCK groups), reading p and σ' instead of a sigmoid per partner. Pairs never
cross groups, so threads never write the same row.

Inside a group the rows of active groups are laid out once per training run in
``perm`` as ``[P (conversions) | C (click-only) | N (non-clicks)]``, so a round
reads no labels and sorts nothing but the group's conversions.

What a first fit compiles was measured (``benchmarks/bench_startup.py``): every
function compiles once per signature; the serial drivers use
``error_model="numpy"`` (as Numba's parallel loops do), without which their row
loops do not vectorise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange  # noqa: F401 - get_num_threads: the objectives' dispatch

from .scalars import (
    LOSS_SQUARED_HINGE,
    bce_row,
    bce_row_pd,
    count_active,
    draw_index,
    esmm_row,
    esmm_terms,
    log1pexp,
    pair_value,
    sigmoid_and_deriv,
    weight,
)
from .groups import Rows, mode_key, pair_group, sort_conversions


def round_key(seed: int, iteration: int) -> np.uint64:
    """64-bit key of one boosting round, derived from (random_state, iteration)."""
    mask = (1 << 64) - 1

    def _mix(x: int) -> int:
        x &= mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    return np.uint64(_mix(_mix(seed + 0x9E3779B97F4A7C15) + iteration * 0x9E3779B97F4A7C15 + 1))


@njit(cache=True)
def draw_indices(key, counters, n):
    """The CPU's counter-based draws ``draw_index(key, c, n)`` per counter (for tests)."""
    out = np.empty(counters.size, dtype=np.int64)
    for x in range(counters.size):
        out[x] = draw_index(key, counters[x], n)
    return out


# --------------------------------------------------------------------------- preparation


@njit(cache=True)
def _class_of(label):
    # 0 = P (conversion), 1 = C (click-only), 2 = N (non-click)
    if label == 2:
        return 0
    if label == 1:
        return 1
    return 2


# The two preparation passes run once per training data, on one thread (objectives/_prepare.py):
# plain loops, as a parfor each cost ~2 s of first compilation and nothing at run time.


def group_stats_ptr(y, w, has_w, gptr):
    """Per-group counts and weight sums of P, C, N for contiguous groups."""
    counts, wsum = _group_stats_arrays(gptr.size - 1)
    _group_stats_ptr(y, w, has_w, gptr, counts, wsum)
    return counts, wsum


def group_stats_codes(y, w, has_w, codes, G):
    """Per-group counts and weight sums of P, C, N for arbitrary group codes."""
    counts, wsum = _group_stats_arrays(G)
    _group_stats_codes(y, w, has_w, codes, counts, wsum)
    return counts, wsum


def _group_stats_arrays(G):
    # allocated here: np.zeros of a 2-D shape inside the kernels cost ~0.4 s of every first fit
    return np.zeros((G, 3), dtype=np.int64), np.zeros((G, 3), dtype=np.float64)


@njit(cache=True)
def _group_stats_ptr(y, w, has_w, gptr, counts, wsum):
    for gi in range(gptr.size - 1):
        for r in range(gptr[gi], gptr[gi + 1]):
            c = _class_of(y[r])
            counts[gi, c] += 1
            wsum[gi, c] += w[r] if has_w else 1.0


@njit(cache=True)
def _group_stats_codes(y, w, has_w, codes, counts, wsum):
    for r in range(y.size):
        c = _class_of(y[r])
        gi = codes[r]
        counts[gi, c] += 1
        wsum[gi, c] += w[r] if has_w else 1.0


@njit(cache=True)
def fill_perm_ptr(y, gptr, active, aptr, counts, perm):
    """Lay out the rows of active groups as [P | C | N] (stable) in ``perm``."""
    for a in range(active.size):
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
        gi, hi = bce_row(np.float64(z[i]), y[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi


@njit(cache=True, error_model="numpy")
def bce_rows_pd(z, y, w, has_w, floor, g, h, pp, pd):
    """:func:`bce_pass` that also stores p and σ' of every row in pp, pd (read by :func:`pair_pass`),
    on one thread (a vectorised row loop: called on views by the drivers below)."""
    for i in range(z.size):
        gi, hi, p, d = bce_row_pd(np.float64(z[i]), y[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi
        pp[i] = p
        pd[i] = d


#: rows per task of the row-parallel BCE pass (:func:`bce_pass_pd`)
ROW_BLOCK = 16384


@njit(parallel=True, cache=True)
def bce_pass_pd(z, y, w, has_w, floor, g, h, pp, pd):
    """:func:`bce_rows_pd` over blocks of ROW_BLOCK rows in parallel."""
    for b in prange((z.size + ROW_BLOCK - 1) // ROW_BLOCK):
        r0 = b * ROW_BLOCK
        r1 = min(r0 + ROW_BLOCK, z.size)
        # w sliced even when empty (has_w False): the view is empty too
        bce_rows_pd(z[r0:r1], y[r0:r1], w[r0:r1], has_w, floor, g[r0:r1], h[r0:r1], pp[r0:r1], pd[r0:r1])


@njit(parallel=True, cache=True)
def bce_loss(z, y, w, has_w):
    total = 0.0
    for i in prange(z.size):
        zi = np.float64(z[i])
        c = 1.0 if y[i] >= 1 else 0.0
        wi = w[i] if has_w else 1.0
        total += wi * (log1pexp(zi) - c * zi)
    return total


# --------------------------------------------------------------------------- pair terms


#: active groups per task of the group-parallel pair pass (:func:`pair_pass`)
GROUP_BLOCK = 256


def _cpu_pairs(P):
    """``P`` with the key that selects the group function while compiling (:func:`groups.mode_key`)."""
    return P._replace(key=mode_key(P.k, P.key, P.loss_kind))


def pair_pass(R, G, P, S, g, h):
    """Add the λ·PWiseR gradient/Hessian of every active group to g, h (group-parallel).

    ``R``, ``G``, ``P``, ``S``: :class:`~gbdt_pwiser.kernels.groups.Rows` (``R.pp``/``R.pd`` hold p
    and σ' of every row, ``R.ro`` = 0: stored by :func:`bce_pass_pd`), ``Groups``, ``Pairs`` (with
    the round key) and ``Scratch``.
    """
    if min(R.pp.size, R.pd.size) < R.z.size or R.ro != 0:
        raise ValueError("pair_pass: the p/σ' buffers must hold every row (ro = 0)")
    _pair_groups(R, G, _cpu_pairs(P), S, g, h)


@njit(cache=True, error_model="numpy")
def _pair_group_range(a0, a1, R, G, P, S, g, h):
    # the parallel driver's call into the group mathematics, one per block of groups: a dispatcher,
    # compiled once (called directly from a prange body, every group function compiled twice), and
    # called per block, not per group (each call increments and decrements the reference count of
    # every array argument: per group, two threads contending on those counts ran no faster than one)
    for a in range(a0, a1):
        pair_group(a, R, G, P, S, g, h)


@njit(parallel=True, cache=True)
def _pair_groups(R, G, P, S, g, h):
    A = G.aptr.size - 1
    for b in prange((A + GROUP_BLOCK - 1) // GROUP_BLOCK):
        a0 = b * GROUP_BLOCK
        _pair_group_range(a0, min(a0 + GROUP_BLOCK, A), R, G, P, S, g, h)


def bce_pair_pass(R, floor, crow, cgrp, G, P, S, g, h):
    """:func:`bce_pass_pd` then :func:`pair_pass`, chunk by chunk, for contiguous groups.

    Chunk c (rows ``crow[c]:crow[c+1]``, active groups ``cgrp[c]:cgrp[c+1]``, whole) gets its BCE
    terms and then its pair terms while its rows are in cache: run as two passes over 2M rows, the
    pair pass waited on memory at every active group. Same arithmetic, same bits. For one thread:
    on more, the BCE loops nested in the parallel chunk loop ran 2-6x slower than the two passes.
    ``R.pp``/``R.pd`` hold p and σ' of one chunk at a time: at least the largest chunk's rows (16 B
    per row of the largest chunk instead of per training row; ``R.ro`` is set per chunk).
    """
    if crow.size > 1 and min(R.pp.size, R.pd.size) < int(np.max(np.diff(crow))):
        raise ValueError("bce_pair_pass: the p/σ' buffers are smaller than the largest chunk")
    _bce_pair_chunks(R, floor, crow, cgrp, G, _cpu_pairs(P), S, g, h)


@njit(cache=True, error_model="numpy")
def _bce_pair_chunks(R, floor, crow, cgrp, G, P, S, g, h):
    # one thread: a plain loop (a parfor here cost ~4 s of first compilation and nothing at run time)
    z = R.z
    y = R.y
    w = R.w
    pp = R.pp
    pd = R.pd
    for c in range(crow.size - 1):
        r0 = crow[c]
        r1 = crow[c + 1]
        # bce_rows_pd on views (w sliced even when empty): its row loop stays vector code; a row
        # loop written here, or given offsets, or a w chosen by has_w, ran ~3x slower (measured)
        # p and σ' of the chunk's rows only, in buffers of the largest chunk's size (row r at r - r0)
        bce_rows_pd(z[r0:r1], y[r0:r1], w[r0:r1], R.has_w, floor, g[r0:r1], h[r0:r1], pp[:r1 - r0], pd[:r1 - r0])
        rows = Rows(z, y, w, R.has_w, pp, pd, r0)
        for a in range(cgrp[c], cgrp[c + 1]):
            pair_group(a, rows, G, P, S, g, h)


@njit(cache=True)
def _sq_hinge_group_loss(z, w, has_w, perm, s, nP, nC, e, m1, m2):
    """Σ over the group's pairs of w_i w_j φ, per term, O(|G| log |P|)."""
    sp = np.empty(nP)
    si = np.empty(nP, dtype=np.int64)
    for q in range(nP):
        r = perm[s + q]
        sp[q] = sigmoid_and_deriv(np.float64(z[r]))[0]
        si[q] = r
    sort_conversions(sp, si, np.empty(nP), np.empty(nP, dtype=np.int64), 0, nP)
    pa = np.zeros(nP + 1)
    pb = np.zeros(nP + 1)
    pc = np.zeros(nP + 1)
    for q in range(nP):
        wi = weight(w, has_w, si[q])
        pa[q + 1] = pa[q] + wi
        pb[q + 1] = pb[q] + wi * sp[q]
        pc[q + 1] = pc[q] + wi * sp[q] * sp[q]
    out_c = 0.0
    out_n = 0.0
    for t in range(s + nP, e):
        m = m1 if t < s + nP + nC else m2
        j = perm[t]
        pj = sigmoid_and_deriv(np.float64(z[j]))[0]
        lo = count_active(sp, 0, nP, pj, m)
        if lo > 0:
            u = pj + m
            v = weight(w, has_w, j) * (u * u * pa[lo] - 2.0 * u * pb[lo] + pc[lo])
            if v < 0.0:
                v = 0.0
            if t < s + nP + nC:
                out_c += v
            else:
                out_n += v
    return out_c, out_n


@njit(parallel=True, cache=True)
def pair_loss_sums(z, w, has_w, G, m1, m2, loss_kind):
    """Per-term sums Σ w_i w_j φ(i, j) over all active groups ``G`` (exact): the squared hinge by
    its prefix sums, other losses pair by pair (:func:`~gbdt_pwiser.kernels.scalars.pair_value`)."""
    perm = G.perm
    A = G.aptr.size - 1
    out = np.zeros((A, 2))
    for a in prange(A):
        s = G.aptr[a]
        e = G.aptr[a + 1]
        nP = G.anP[a]
        nC = G.anC[a]
        if loss_kind == LOSS_SQUARED_HINGE:
            c, n = _sq_hinge_group_loss(z, w, has_w, perm, s, nP, nC, e, m1, m2)
            out[a, 0] = c
            out[a, 1] = n
        else:
            for q in range(nP):
                i = perm[s + q]
                zi = np.float64(z[i])
                wi = weight(w, has_w, i)
                for t in range(s + nP, e):
                    j = perm[t]
                    term = 0 if t < s + nP + nC else 1
                    v = pair_value(loss_kind, zi, np.float64(z[j]), m1 if term == 0 else m2)
                    out[a, term] += wi * weight(w, has_w, j) * v
    return out[:, 0].sum(), out[:, 1].sum()


# --------------------------------------------------------------------------- entire-space CVR (docs/mathematics.md §5)


@njit(parallel=True, cache=True)
def esmm_pass(u, v, a, w, has_w, floor, g, h):
    """Gradient and Fisher Hessian of BCE(a·σ(u), v) w.r.t. the CVR margin u (see scalars.esmm_row)."""
    for i in prange(u.size):
        gi, hi = esmm_row(np.float64(u[i]), v[i], a[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi


@njit(parallel=True, cache=True)
def esmm_loss(u, v, a, w, has_w):
    total = 0.0
    for i in prange(u.size):
        ai = a[i]
        ui = np.float64(u[i])
        q, dq, one_m_q, one_m_aq = esmm_terms(ui, ai)
        wi = w[i] if has_w else 1.0
        if v[i] == 2:
            # -log(a q) = -log a + log(1 + exp(-u))
            total += wi * (-math.log(ai) + log1pexp(-ui))
        else:
            total += wi * (-math.log(one_m_aq))
    return total
