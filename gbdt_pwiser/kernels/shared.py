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

The CPU drivers use :func:`exact_group_pd`, :func:`exact_logistic_group_pd` and
:func:`sampled_group_pd` (end of this module, one signature: the drivers pick one
while compiling; groups with one conversion, most active groups, take
:func:`sq_hinge_single_pd`, with nothing to sort and no buckets): the same
arithmetic through the same scalars, with p and σ' of every row read from the
BCE pass instead of one sigmoid per partner, and one call per group; the CUDA
group kernel still uses :func:`pair_group`. Both give the same bits.
"""

from __future__ import annotations

import numpy as np

from .scalars import (
    INSERTION_SORT_MAX,
    LOSS_SQUARED_HINGE,
    _inlined,
    _shared,
    add_at,
    count_active,
    draw_index,
    partner_term,
    sigmoid_and_deriv,
    sq_hinge_conversion_terms,
    sq_hinge_pair,
    sq_hinge_partner_terms,
    term_span,
    weight,
)


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


@_inlined
def conversion_prefix(w, has_w, sp, si, po, bo, nP, pa, pb):
    """Prefix sums of w_i and w_i p_i over the sorted conversions (pa[bo] = pb[bo] = 0)."""
    pa[bo] = 0.0
    pb[bo] = 0.0
    for q in range(nP):
        wi = weight(w, has_w, si[po + q])
        pa[bo + q + 1] = pa[bo + q] + wi
        pb[bo + q + 1] = pb[bo + q] + wi * sp[po + q]


@_inlined
def clear_buckets(bw, bwp, bo, nP):
    """Zero the nP + 1 partner buckets of a group (offset bo) before a term."""
    for q in range(nP + 1):
        bw[bo + q] = 0.0
        bwp[bo + q] = 0.0


@_shared
def sq_hinge_partner(z, w, has_w, j, sp, po, nP, pa, pb, bo, bw, bwp, bb, m, sc, g, h, atomic):
    """Partner j's own gradient/Hessian; its w_j and w_j p_j go to bucket bb + r_j."""
    pj, dj = sigmoid_and_deriv(np.float64(z[j]))
    r = count_active(sp, po, nP, pj, m)
    if r > 0:
        wj = weight(w, has_w, j)
        gj, hj = sq_hinge_partner_terms(pj, dj, wj, m, sc, pa[bo + r], pb[bo + r])
        g[j] += gj
        h[j] += hj
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
            gi, hi = sq_hinge_conversion_terms(weight(w, has_w, i), di, pi, m, sc, SW, SWP)
            g[i] += gi
            h[i] += hi


@_shared
def sq_hinge_group(z, w, has_w, perm, s, nP, nC, e, po, bo, sc_c, sc_n, m1, m2,
                   g, h, sp, si, tp, ti, pa, pb, bw, bwp):
    """Exact squared hinge of one group, O(|G| log |P|); buckets bw/bwp at offset bo."""
    for q in range(nP):
        load_conversion(z, perm, s, q, sp, si, po)
    sort_conversions(sp, si, tp, ti, po, nP)
    conversion_prefix(w, has_w, sp, si, po, bo, nP, pa, pb)
    for term in range(2):
        js, je, m, sc = term_span(term, s, nP, nC, e, m1, m2, sc_c, sc_n)
        if je == js or sc == 0.0:
            continue
        clear_buckets(bw, bwp, bo, nP)
        for t in range(js, je):
            sq_hinge_partner(z, w, has_w, perm[t], sp, po, nP, pa, pb, bo, bw, bwp, bo, m, sc, g, h, False)
        sq_hinge_suffix(z, w, has_w, sp, si, po, nP, bw, bwp, bo, m, sc, g, h)


# --------------------------------------------------------------------------- exact logistic


@_inlined
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
    i = perm[t]
    zi = np.float64(z[i])
    pi, di = sigmoid_and_deriv(zi)
    wi = weight(w, has_w, i)
    for term in range(2):
        base, je, m, sc = term_span(term, s, nP, nC, e, m1, m2, sc_c, sc_n)
        nT = je - base
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
                act, gi, hi, gj, hj = sq_hinge_pair(pi, di, pj, dj, m, pw)
                if act:
                    g[i] += gi
                    h[i] += hi
                    add_at(g, j, gj, atomic)
                    add_at(h, j, hj, atomic)
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


# --------------------------------------------------------------------------- CPU group path: p, σ' once per row
#
# The CPU's BCE pass stores p = σ(z) and σ'(z) = p(1 - p) of every row (``pp[r - ro]``, ``pd[r - ro]``:
# ro = 0 for buffers of all rows, the chunk's first row for the one-thread pass's chunk buffers;
# :func:`bce_row_pd`: the sigmoid is evaluated once per row, vectorised), and the group functions
# below read them instead of evaluating the sigmoid once per partner (exact) or per drawn pair
# (sampled). One call per group; the loops call only inlined scalars. The arithmetic is that of
# the per-partner functions above (the same scalars, the same order), so the results are bitwise
# those of :func:`pair_group`, which the CUDA group kernel uses.


@_inlined
def sq_hinge_partners(w, has_w, perm, pp, pd, ro, js, je, sp, po, nP, pa, pb, bo, bw, bwp, m, sc, g, h):
    """:func:`sq_hinge_partner` for the partners at positions [js, je), from pp/pd."""
    # branch-free: a partner with no active conversion (r = 0) reads the empty prefix
    # pa[bo] = pb[bo] = 0, so adds 0 to g, h, and its weight lands in bucket 0, which no
    # conversion's suffix sum reads (sq_hinge_suffix_pd sums buckets 1..nP)
    for t in range(js, je):
        j = perm[t]
        pj = pp[j - ro]
        r = count_active(sp, po, nP, pj, m)
        wj = weight(w, has_w, j)
        gj, hj = sq_hinge_partner_terms(pj, pd[j - ro], wj, m, sc, pa[bo + r], pb[bo + r])
        g[j] += gj
        h[j] += hj
        bw[bo + r] += wj
        bwp[bo + r] += wj * pj


@_inlined
def sq_hinge_suffix_pd(w, has_w, pd, ro, sp, si, po, nP, bw, bwp, bb, m, sc, g, h):
    """:func:`sq_hinge_suffix` reading the conversions' σ' from pd."""
    SW = 0.0
    SWP = 0.0
    for q in range(nP - 1, -1, -1):
        SW += bw[bb + q + 1]
        SWP += bwp[bb + q + 1]
        if SW != 0.0:
            i = si[po + q]
            gi, hi = sq_hinge_conversion_terms(weight(w, has_w, i), pd[i - ro], sp[po + q], m, sc, SW, SWP)
            g[i] += gi
            h[i] += hi


@_inlined
def sq_hinge_single_pd(w, has_w, perm, pp, pd, ro, s, nC, e, sc_c, sc_n, m1, m2, g, h):
    """:func:`exact_group_pd` of a group with one conversion (most active groups), same bits.

    Nothing to sort; the prefix sums are A = w_i, B = w_i p_i (``0.0 + x`` is x) and the one
    bucket the conversion reads is a running sum in registers (the buckets' sums in the same
    order). A partner with no active pair adds a signed zero to g, h, as in the general path,
    which changes no value: it is skipped.
    """
    i = perm[s]
    pi = pp[i - ro]
    wi = weight(w, has_w, i)
    wpi = wi * pi
    for term in range(2):
        js, je, m, sc = term_span(term, s, 1, nC, e, m1, m2, sc_c, sc_n)
        if je == js or sc == 0.0:
            continue
        SW = 0.0
        SWP = 0.0
        for t in range(js, je):
            j = perm[t]
            pj = pp[j - ro]
            if (pj - pi) + m > 0.0:
                wj = weight(w, has_w, j)
                gj, hj = sq_hinge_partner_terms(pj, pd[j - ro], wj, m, sc, wi, wpi)
                g[j] += gj
                h[j] += hj
                SW += wj
                SWP += wj * pj
        if SW != 0.0:
            gi, hi = sq_hinge_conversion_terms(wi, pd[i - ro], pi, m, sc, SW, SWP)
            g[i] += gi
            h[i] += hi


@_shared
def sampled_group_pd(a, z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
                     g, h, sp, si, tp, ti, pa, pb, bw, bwp, pp, pd, ro):
    """:func:`sampled_conversion` for every conversion of active group a, squared hinge from pp/pd."""
    s = aptr[a]
    e = aptr[a + 1]
    nP = anP[a]
    nC = anC[a]
    for t in range(s, s + nP):
        i = perm[t]
        zi = np.float64(z[i])
        pi = pp[i - ro]
        di = pd[i - ro]
        wi = weight(w, has_w, i)
        for term in range(2):
            base, je, m, sc = term_span(term, s, nP, nC, e, m1, m2, sc_c, sc_n)
            nT = je - base
            if nT == 0 or sc == 0.0:
                continue
            fac = sc * wi * nT / k
            for dd in range(k):
                u = base + draw_index(key, (np.int64(i) * 2 + term) * k + dd, nT)
                j = perm[u]
                pw = fac * weight(w, has_w, j)
                if loss_kind == LOSS_SQUARED_HINGE:
                    act, gi, hi, gj, hj = sq_hinge_pair(pi, di, pp[j - ro], pd[j - ro], m, pw)
                    if act:
                        g[i] += gi
                        h[i] += hi
                        g[j] += gj
                        h[j] += hj
                else:
                    sv, dv = sigmoid_and_deriv(np.float64(z[j]) - zi + m)
                    g[i] -= pw * sv
                    h[i] += pw * dv
                    g[j] += pw * sv
                    h[j] += pw * dv


@_shared
def exact_group_pd(a, z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
                   g, h, sp, si, tp, ti, pa, pb, bw, bwp, pp, pd, ro):
    """:func:`pair_group` of active group a for ``pairs="all"`` and the squared hinge
    (:func:`sq_hinge_group`), p and σ' of each row read from pp/pd.

    One function, not a call into a group function: every layer of inlined calls is optimised
    again by LLVM when its caller compiles (one layer fewer: ~0.6 s less first compilation).
    """
    s = aptr[a]
    e = aptr[a + 1]
    nP = anP[a]
    nC = anC[a]
    if nP == 1:
        sq_hinge_single_pd(w, has_w, perm, pp, pd, ro, s, nC, e, sc_c, sc_n, m1, m2, g, h)
        return
    po = pptr[a]
    bo = po + a
    for q in range(nP):
        r = perm[s + q]
        sp[po + q] = pp[r - ro]
        si[po + q] = r
    sort_conversions(sp, si, tp, ti, po, nP)
    conversion_prefix(w, has_w, sp, si, po, bo, nP, pa, pb)
    for term in range(2):
        js, je, m, sc = term_span(term, s, nP, nC, e, m1, m2, sc_c, sc_n)
        if je == js or sc == 0.0:
            continue
        clear_buckets(bw, bwp, bo, nP)
        sq_hinge_partners(w, has_w, perm, pp, pd, ro, js, je, sp, po, nP, pa, pb, bo, bw, bwp, m, sc, g, h)
        sq_hinge_suffix_pd(w, has_w, pd, ro, sp, si, po, nP, bw, bwp, bo, m, sc, g, h)


@_shared
def exact_logistic_group_pd(a, z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
                            g, h, sp, si, tp, ti, pa, pb, bw, bwp, pp, pd, ro):
    """:func:`pair_group` of active group a for ``pairs="all"`` and the logistic loss (a sigmoid
    per pair: nothing to read from pp/pd)."""
    s = aptr[a]
    e = aptr[a + 1]
    nP = anP[a]
    nC = anC[a]
    for t in range(s, s + nP):
        logistic_conversion(z, w, has_w, perm, s, nP, nC, e, sc_c, sc_n, m1, m2, t, g, h, True)
