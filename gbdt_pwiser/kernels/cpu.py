"""CPU kernels (docs/mathematics.md §2–§5): Numba loops over a range of rows or groups.

The mathematics of a row and of a group is in :mod:`gbdt_pwiser.kernels.scalars` and
:mod:`gbdt_pwiser.kernels.groups` (one source for the CPU and the CUDA kernels, with the
argument groups ``Rows``, ``Groups``, ``Pairs`` and ``Scratch``); this module holds the CPU's
loops and the CPU-only parts (data preparation, the loss values). Each loop runs on one thread
without the GIL; :mod:`gbdt_pwiser.kernels.passes` runs them in parts on the objectives' threads.

Layering (after stumpy): the validated public API in :mod:`gbdt_pwiser.objectives`
prepares the data once (:func:`prepare_ptr` / :func:`prepare_codes`, plain loops),
then every boosting round runs either

* :func:`bce_pair_chunks` — for contiguous groups: chunk by chunk, the chunk's BCE
  terms (:func:`bce_rows_pd`, storing p and σ' = p(1 - p) of its rows) and then its
  active groups' pair terms, while its rows are in cache (a part: a range of chunks); or
* :func:`bce_rows_pd` (a part: a range of rows) then :func:`pair_groups` (a part: a
  range of *active* groups: a conversion and at least one partner, whose rows' sums
  start again from p and σ'), with p and σ' of every row in between; :func:`bce_rows`
  alone when λ = 0.

The pair terms add to float64 sums; the gradients a booster gets are those sums rounded
once to float32 (:func:`store_rows`), what XGBoost and LightGBM keep of them.

A group's pair terms are one call, :func:`~gbdt_pwiser.kernels.groups.pair_group`
(the same function the CUDA group kernel calls; here its group function is chosen
while compiling and inlined), reading p and σ' instead of a sigmoid per partner.
Pairs never cross groups, so parts never write the same row.

Inside a group the rows of active groups are laid out once per training run in
``perm`` as ``[P (conversions) | C (click-only) | N (non-clicks)]``, so a round
reads no labels and sorts nothing but the group's conversions.

What a first fit compiles was measured (``benchmarks/bench_startup.py``): every
function compiles once per signature; the loops use ``error_model="numpy"``,
without which their row loops do not vectorise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from .._threads import install_compile_notice
from .groups import Rows, mode_key, pair_group, sort_conversions
from .scalars import (
    LOSS_SQUARED_HINGE,
    bce_from_pd,
    bce_row,
    bce_row_pd,
    count_active,
    draw_index,
    esmm_row,
    esmm_terms,
    log1pexp,
    non_finite,
    pair_value,
    sigmoid_and_deriv,
    weight,
)

install_compile_notice()  # before the first kernel compiles


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
#
# The row kernels count the margins that are NaN or infinite block by block, each block just
# before they compute it (no pass of its own over cold margins before the kernels: 0.14 ms for
# NumPy's over 300k float64 margins, against +0.04-0.05 ms in the kernels, on one thread); the
# objective raises when the count is not 0, after the pass (:mod:`gbdt_pwiser.objectives.pwiser`).
# Nothing a non-finite margin computes indexes memory: the pair terms' only index that depends on p
# (``count_active``) stays in [0, nP].
#
# Every kernel below runs on one thread over a range of rows or groups, without the GIL
# (``nogil``): :mod:`gbdt_pwiser.kernels.passes` cuts a pass into one part per thread and runs the
# parts on the objectives' threads (:func:`gbdt_pwiser._threads.run_parts`). The row kernels take
# views of the part's rows (w sliced even when empty: the view is empty too): their loops stay
# vector code (``error_model="numpy"``), which a loop given offsets, or a w chosen by has_w, did not.

_KERNEL: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


#: Rows whose margins a row kernel counts before it computes them (then in L1): a count inside the
#: row loop cost 0.17 ms a 300k-row pass of float32 margins on one thread (the loop's vector code
#: got worse), a separate loop over each block 0.04 ms.
ROW_BLOCK = 4096


@njit(**_KERNEL)
def count_non_finite(z):
    """The number of NaN and infinite values of z."""
    bad = 0
    for i in range(z.size):
        bad += non_finite(z[i])
    return bad


@njit(**_KERNEL)
def _bce_block(z, y, w, has_w, floor, g, h):
    for i in range(z.size):
        gi, hi = bce_row(np.float64(z[i]), y[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi


@njit(**_KERNEL)
def bce_rows(z, y, w, has_w, floor, g, h):
    """g = w (p - c), h = max(w σ', floor) for every row (c = click = y >= 1); returns the number
    of margins that are NaN or infinite (counted block by block, :data:`ROW_BLOCK`)."""
    bad = 0
    for b0 in range(0, z.size, ROW_BLOCK):
        b1 = min(z.size, b0 + ROW_BLOCK)
        bad += count_non_finite(z[b0:b1])
        _bce_block(z[b0:b1], y[b0:b1], w[b0:b1], has_w, floor, g[b0:b1], h[b0:b1])
    return bad


@njit(**_KERNEL)
def _bce_pd_block(z, y, w, has_w, floor, g, h, pp, pd):
    for i in range(z.size):
        gi, hi, p, d = bce_row_pd(np.float64(z[i]), y[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi
        pp[i] = p
        pd[i] = d


@njit(**_KERNEL)
def bce_rows_pd(z, y, w, has_w, floor, g, h, pp, pd):
    """:func:`bce_rows` that also stores p and σ' of every row in pp, pd (read by the pair terms)."""
    bad = 0
    for b0 in range(0, z.size, ROW_BLOCK):
        b1 = min(z.size, b0 + ROW_BLOCK)
        bad += count_non_finite(z[b0:b1])
        _bce_pd_block(z[b0:b1], y[b0:b1], w[b0:b1], has_w, floor, g[b0:b1], h[b0:b1], pp[b0:b1], pd[b0:b1])
    return bad


@njit(**_KERNEL)
def bce_loss_rows(z, y, w, has_w):
    """Σ w (log(1 + e^z) - c z) over the rows."""
    total = 0.0
    for i in range(z.size):
        zi = np.float64(z[i])
        c = 1.0 if y[i] >= 1 else 0.0
        total += (w[i] if has_w else 1.0) * (log1pexp(zi) - c * zi)
    return total


# --------------------------------------------------------------------------- pair terms


def cpu_pairs(P):
    """``P`` with the key that selects the group function while compiling (:func:`groups.mode_key`)."""
    return P._replace(key=mode_key(P.k, P.key, P.loss_kind))


@njit(**_KERNEL)
def pair_groups(a0, a1, R, G, P, S, floor, ga, ha, g, h):
    """BCE plus pair terms of the rows of active groups a0..a1-1 (``R.pp``/``R.pd``: p and σ' of
    every row, ``R.ro`` 0; ``P``: :func:`cpu_pairs`), group by group: the float64 sums ``ga``/``ha``
    of the group's rows start from their BCE terms (from p and σ': the bits of the BCE pass), take
    the pair terms and are stored in g, h (rounded to their dtype).
    Rows of no active group keep what the BCE pass wrote, and no pass reads every row again. Pairs
    never cross groups: parts over disjoint groups write disjoint rows."""
    perm = G.perm
    for a in range(a0, a1):
        s = G.aptr[a]
        e = G.aptr[a + 1]
        for t in range(s, e):
            j = perm[t]
            ga[j], ha[j] = bce_from_pd(R.pp[j], R.pd[j], R.y[j], weight(R.w, R.has_w, j), floor)
        pair_group(a, R, G, P, S, ga, ha)
        for t in range(s, e):
            j = perm[t]
            g[j] = ga[j]
            h[j] = ha[j]


@njit(**_KERNEL)
def bce_pair_chunks(R, floor, crow, cgrp, G, P, S, ga, ha, g, h):
    """BCE then pair terms, chunk by chunk, for contiguous groups.

    Chunk c (rows ``crow[c]:crow[c+1]``, active groups ``cgrp[c]:cgrp[c+1]``, whole) gets its BCE
    terms and then its pair terms while its rows are in cache: run as two passes over 2M rows, the
    pair pass waited on memory at every active group. Same arithmetic, same bits. ``R.pp``/``R.pd``
    hold p and σ' of one chunk at a time and ``ga``/``ha`` its float64 gradient and Hessian sums
    (row r at r - crow[c]: at least the largest chunk's rows), stored in g, h once the chunk is done:
    the sums rounded once to g, h's dtype (float32 for a booster: what it keeps of them). Returns
    the number of margins that are NaN or infinite (:func:`bce_rows`).
    """
    z = R.z
    y = R.y
    w = R.w
    pp = R.pp
    pd = R.pd
    bad = 0
    for c in range(crow.size - 1):
        r0 = crow[c]
        r1 = crow[c + 1]
        nr = r1 - r0
        bad += bce_rows_pd(z[r0:r1], y[r0:r1], w[r0:r1], R.has_w, floor, ga[:nr], ha[:nr], pp[:nr], pd[:nr])
        rows = Rows(z, y, w, R.has_w, pp, pd, r0)
        for a in range(cgrp[c], cgrp[c + 1]):
            pair_group(a, rows, G, P, S, ga, ha)
        store_rows(ga[:nr], ha[:nr], g[r0:r1], h[r0:r1])
    return bad


@njit(**_KERNEL)
def store_rows(ga, ha, g, h):
    """g = ga, h = ha, each value rounded to g, h's dtype (float32 for a booster, else a copy)."""
    for i in range(ga.size):
        g[i] = ga[i]
        h[i] = ha[i]


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


@njit(**_KERNEL)
def pair_loss_groups(a0, a1, z, w, has_w, G, m1, m2, loss_kind):
    """Per-term sums Σ w_i w_j φ(i, j) over active groups a0..a1-1 (exact): the squared hinge by
    its prefix sums, other losses pair by pair (:func:`~gbdt_pwiser.kernels.scalars.pair_value`)."""
    perm = G.perm
    out_c = 0.0
    out_n = 0.0
    for a in range(a0, a1):
        s = G.aptr[a]
        e = G.aptr[a + 1]
        nP = G.anP[a]
        nC = G.anC[a]
        if loss_kind == LOSS_SQUARED_HINGE:
            c, n = _sq_hinge_group_loss(z, w, has_w, perm, s, nP, nC, e, m1, m2)
            out_c += c
            out_n += n
            continue
        for q in range(nP):
            i = perm[s + q]
            zi = np.float64(z[i])
            wi = weight(w, has_w, i)
            for t in range(s + nP, e):
                j = perm[t]
                if t < s + nP + nC:
                    out_c += wi * weight(w, has_w, j) * pair_value(loss_kind, zi, np.float64(z[j]), m1)
                else:
                    out_n += wi * weight(w, has_w, j) * pair_value(loss_kind, zi, np.float64(z[j]), m2)
    return out_c, out_n


# --------------------------------------------------------------------------- entire-space CVR (docs/mathematics.md §5)


@njit(**_KERNEL)
def esmm_rows(u, v, a, w, has_w, floor, g, h):
    """Gradient and Fisher Hessian of BCE(a·σ(u), v) w.r.t. the CVR margin u (see scalars.esmm_row)."""
    for i in range(u.size):
        gi, hi = esmm_row(np.float64(u[i]), v[i], a[i], w[i] if has_w else 1.0, floor)
        g[i] = gi
        h[i] = hi


@njit(**_KERNEL)
def esmm_loss_rows(u, v, a, w, has_w):
    total = 0.0
    for i in range(u.size):
        ai = a[i]
        ui = np.float64(u[i])
        _q, _dq, _one_m_q, one_m_aq = esmm_terms(ui, ai)
        wi = w[i] if has_w else 1.0
        if v[i] == 2:
            # -log(a q) = -log a + log(1 + exp(-u))
            total += wi * (-math.log(ai) + log1pexp(-ui))
        else:
            total += wi * (-math.log(one_m_aq))
    return total
