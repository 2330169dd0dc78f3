"""The pair terms of a group, written once for the CPU and the CUDA kernels (docs/mathematics.md §3–§4).

Every function here is plain Python registered (like
:func:`numba.extending.register_jitable`, see :mod:`gbdt_pwiser.kernels.scalars`) for the CPU and
the CUDA target, so that the same text is compiled by ``@njit`` (the CPU drivers in
:mod:`gbdt_pwiser.kernels.cpu`), by ``cuda.jit`` (the kernels in :mod:`gbdt_pwiser.kernels.cuda`)
and run as Python by numba's CUDA simulator. Both targets call the same group functions on the
same inputs: the BCE pass of either stores p = σ(z) and σ' = p(1 - p) of every row, and the group
functions read them (one sigmoid per row, not one per partner or drawn pair).

**Arguments, grouped.** Four named tuples travel through every layer (host code, drivers, kernels,
group functions) as one argument each, with the outputs ``g, h`` (gradient and Hessian, added to):

* :class:`Rows` ``(z, y, w, has_w, pp, pd, ro)`` — per-row inputs: margins, funnel labels, weights
  (``has_w`` False: all 1), p and σ' of row r at ``pp[r - ro]``, ``pd[r - ro]``, and its gradient
  and Hessian at ``g[r - ro]``, ``h[r - ro]`` (``ro`` = 0 for buffers of all rows; the first row of
  a chunk for the CPU's one-thread chunked pass, whose buffers hold one chunk);
* :class:`Groups` ``(perm, aptr, anP, anC, pptr)`` — the active groups, fixed for a training run:
  group a's rows are ``perm[aptr[a]:aptr[a+1]]`` laid out as [P | C | N], with ``anP[a]``
  conversions and ``anC[a]`` click-only rows; its conversions' scratch starts at ``pptr[a]``;
* :class:`Pairs` ``(sc_c, sc_n, m1, m2, loss_kind, k, key)`` — one round's pair parameters:
  per-term scales λ·W / pair weight, margins, the pair loss, ``k`` draws (0: exact) and the round
  key (on the CPU the key's type also selects the group function while compiling: :func:`mode_key`);
* :class:`Scratch` ``(sp, si, tp, ti, pa, pb, bw, bwp)`` — sorted conversions (p, row), merge-sort
  ping-pong, prefix sums and partner buckets (CPU: ``nP + A`` buckets; CUDA: twice, one per term).

**One group.** :func:`pair_group` is the entry point of both targets: the CPU drivers call it per
active group (the group function chosen while compiling), the CUDA group kernel per small active
group (chosen at run time). It calls :func:`exact_sq_hinge_group` (exact squared hinge, sorted
prefix sums), :func:`exact_pairs_group` (exact, every pair: losses without a closed form) or
:func:`sampled_group` (k draws per conversion and term). The CUDA row-parallel kernels of large
groups are built from the same pieces: :func:`load_conversion`, :func:`conversion_prefix`,
:func:`sq_hinge_partner`, :func:`sq_hinge_suffix`, :func:`all_pairs_conversion`,
:func:`all_pairs_partner` and :func:`sampled_conversion`.

Where the targets genuinely differ there is one name with one body per target
(:func:`numba.extending.overload` with ``target="cpu"`` / ``target="cuda"``, and the Python body
for the simulator): :func:`pair_group` (the choice of group function), and in ``scalars``
:func:`~gbdt_pwiser.kernels.scalars.pow2_scale` and :func:`~gbdt_pwiser.kernels.scalars.add_at`
(``cuda.atomic.add`` where the caller says that several threads may write a row: the row-parallel
kernels; the CPU never needs it, one thread per group).

Exact squared hinge (``pairs="all"``): with the conversions of a group sorted by ``p`` ascending, a
partner ``j`` is active with conversion ``i`` iff ``(p_j - p_i) + m > 0`` — monotone in ``p_i`` — so
its active conversions are a prefix of length ``r_j`` (binary search). Prefix sums of ``w_i`` and
``w_i p_i`` give ``j``'s gradient; bucketing ``w_j`` and ``w_j p_j`` at ``r_j`` and taking suffix
sums gives every conversion's: ``O(|G| log |P_G|)``. Groups with one conversion (most active
groups) take :func:`sq_hinge_single`: nothing to sort, no buckets, the same bits.

**Adding a pair loss** touches: ``LOSS_*`` and its branch in
:func:`~gbdt_pwiser.kernels.scalars.pair_terms` (derivatives) and
:func:`~gbdt_pwiser.kernels.scalars.pair_value` (value), its name in
``gbdt_pwiser._validation.PAIR_LOSSES``, docs/mathematics.md, and the tests (finite differences
and the naive double loop in ``tests/objectives/test_objective.py``). Sampled and exact mode then work on
both targets (exact: every pair, O(|P|·|partners|) per group). Only a closed form like the squared
hinge's needs its own group function here, selected in :func:`pair_group` (both bodies) and in the
CUDA host's launch of the large groups (``objectives/_cuda.py``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import overload

from .scalars import (
    INSERTION_SORT_MAX,
    LOSS_SQUARED_HINGE,
    _inlined,
    _outlined,
    add_at,
    count_active,
    draw_index,
    pair_terms,
    partner_term,
    sq_hinge_conversion_terms,
    sq_hinge_partner_terms,
    term_span,
    weight,
)

#: Per-row inputs (see the module docstring).
Rows = namedtuple("Rows", "z y w has_w pp pd ro")
#: The active groups' layout, fixed for a training run.
Groups = namedtuple("Groups", "perm aptr anP anC pptr")
#: One round's pair parameters.
Pairs = namedtuple("Pairs", "sc_c sc_n m1 m2 loss_kind k key")
#: Per-round scratch of the pair terms.
Scratch = namedtuple("Scratch", "sp si tp ti pa pb bw bwp")


@_inlined
def row_values(R, i):
    """Row i's margin (float64), p, σ' and weight."""
    return np.float64(R.z[i]), R.pp[i - R.ro], R.pd[i - R.ro], weight(R.w, R.has_w, i)


@_inlined
def group_span(G, a):
    """Active group a's rows ``perm[s:e]``, its number of conversions and of click-only rows."""
    return G.aptr[a], G.aptr[a + 1], G.anP[a], G.anC[a]


# --------------------------------------------------------------------------- sorting


@_outlined
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


@_outlined
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


@_inlined
def load_conversion(R, perm, s, q, sp, si, po):
    """sp[po+q] = p of the group's q-th conversion, si[po+q] = its row."""
    r = perm[s + q]
    sp[po + q] = R.pp[r - R.ro]
    si[po + q] = r


@_inlined
def conversion_prefix(R, S, po, bo, nP):
    """Prefix sums of w_i and w_i p_i over the sorted conversions S.sp/S.si (pa[bo] = pb[bo] = 0)."""
    pa = S.pa
    pb = S.pb
    pa[bo] = 0.0
    pb[bo] = 0.0
    for q in range(nP):
        wi = weight(R.w, R.has_w, S.si[po + q])
        pa[bo + q + 1] = pa[bo + q] + wi
        pb[bo + q + 1] = pb[bo + q] + wi * S.sp[po + q]


@_inlined
def clear_buckets(S, bo, nP):
    """Zero the nP + 1 partner buckets of a group (offset bo) before a term."""
    for q in range(nP + 1):
        S.bw[bo + q] = 0.0
        S.bwp[bo + q] = 0.0


@_inlined
def sq_hinge_partner(R, S, j, po, nP, bo, bb, m, sc, g, h, atomic):
    """Partner j's own gradient/Hessian from the prefix sums at bo; its w_j and w_j p_j go to
    bucket bb + r_j (atomic: several threads share the buckets and rows)."""
    pj = R.pp[j - R.ro]
    r = count_active(S.sp, po, nP, pj, m)
    # the CPU is branch-free (atomic is a constant False there): a partner with no active
    # conversion (r = 0) reads the empty prefix pa[bo] = pb[bo] = 0, so adds 0 to g, h, and its
    # weight lands in bucket 0, which no conversion's suffix sum reads (buckets 1..nP)
    if r > 0 or not atomic:
        wj = weight(R.w, R.has_w, j)
        gj, hj = sq_hinge_partner_terms(pj, R.pd[j - R.ro], wj, m, sc, S.pa[bo + r], S.pb[bo + r])
        g[j - R.ro] += gj
        h[j - R.ro] += hj
        add_at(S.bw, bb + r, wj, atomic)
        add_at(S.bwp, bb + r, wj * pj, atomic)


@_inlined
def sq_hinge_suffix(R, S, po, nP, bb, m, sc, g, h):
    """The conversions' gradient/Hessian from the suffix sums of the partners' buckets at bb."""
    SW = 0.0
    SWP = 0.0
    for q in range(nP - 1, -1, -1):
        SW += S.bw[bb + q + 1]
        SWP += S.bwp[bb + q + 1]
        if SW != 0.0:
            i = S.si[po + q]
            gi, hi = sq_hinge_conversion_terms(weight(R.w, R.has_w, i), R.pd[i - R.ro], S.sp[po + q], m, sc, SW, SWP)
            g[i - R.ro] += gi
            h[i - R.ro] += hi


@_inlined
def sq_hinge_single(R, G, P, s, nC, e, g, h):
    """:func:`exact_sq_hinge_group` of a group with one conversion (most active groups), same bits.

    Nothing to sort; the prefix sums are A = w_i, B = w_i p_i (``0.0 + x`` is x) and the one
    bucket the conversion reads is a running sum in registers (the buckets' sums in the same
    order). No branch on a partner's activity: an inactive partner's weight is selected to 0, so it
    adds zeros to g, h and the sums, which changes no value, as in the general path. The branch was
    mispredicted about as often as not: a dense exact pass on one thread took 1.91 ms with it,
    1.58-1.61 ms without (300k rows, random margins; 1.63 against 1.60 with margins that follow
    the labels).
    """
    pp = R.pp
    pd = R.pd
    ro = R.ro
    i = G.perm[s]
    pi = pp[i - ro]
    wi = weight(R.w, R.has_w, i)
    wpi = wi * pi
    for term in range(2):
        js, je, m, sc = term_span(P, term, s, 1, nC, e)
        if je == js or sc == 0.0:
            continue
        SW = 0.0
        SWP = 0.0
        for t in range(js, je):
            j = G.perm[t]
            pj = pp[j - ro]
            wj = weight(R.w, R.has_w, j) if (pj - pi) + m > 0.0 else 0.0
            gj, hj = sq_hinge_partner_terms(pj, pd[j - ro], wj, m, sc, wi, wpi)
            g[j - R.ro] += gj
            h[j - R.ro] += hj
            SW += wj
            SWP += wj * pj
        if SW != 0.0:
            gi, hi = sq_hinge_conversion_terms(wi, pd[i - ro], pi, m, sc, SW, SWP)
            g[i - R.ro] += gi
            h[i - R.ro] += hi


@_outlined
def exact_sq_hinge_group(a, R, G, P, S, g, h):
    """The exact squared hinge of active group a, O(|G| log |P|) (the module docstring).

    One function, not a call into a group function: every layer of inlined calls is optimised
    again by LLVM when its caller compiles (one layer fewer: ~0.6 s less first compilation).
    """
    s, e, nP, nC = group_span(G, a)
    if nP == 1:
        sq_hinge_single(R, G, P, s, nC, e, g, h)
        return
    po = G.pptr[a]
    bo = po + a
    for q in range(nP):
        load_conversion(R, G.perm, s, q, S.sp, S.si, po)
    sort_conversions(S.sp, S.si, S.tp, S.ti, po, nP)
    conversion_prefix(R, S, po, bo, nP)
    for term in range(2):
        js, je, m, sc = term_span(P, term, s, nP, nC, e)
        if je == js or sc == 0.0:
            continue
        clear_buckets(S, bo, nP)
        for t in range(js, je):
            sq_hinge_partner(R, S, G.perm[t], po, nP, bo, bo, m, sc, g, h, False)
        sq_hinge_suffix(R, S, po, nP, bo, m, sc, g, h)


# --------------------------------------------------------------------------- exact, every pair


@_inlined
def all_pairs_conversion(R, G, P, s, nP, nC, e, t, g, h, to_partners):
    """The conversion at position t against all its partners (adding to theirs when to_partners)."""
    i = G.perm[t]
    zi, pi, di, wi = row_values(R, i)
    gi = 0.0
    hi = 0.0
    for u in range(s + nP, e):
        m, sc = partner_term(P, u, s, nP, nC)
        j = G.perm[u]
        act, gq, hq, gj, hj = pair_terms(P.loss_kind, zi, pi, di, R, j, m, sc * wi * weight(R.w, R.has_w, j))
        if act:
            gi += gq
            hi += hq
            if to_partners:
                g[j - R.ro] += gj
                h[j - R.ro] += hj
    g[i - R.ro] += gi
    h[i - R.ro] += hi


@_outlined
def all_pairs_partner(R, G, P, s, nP, nC, t, g, h):
    """The partner at position t against all conversions (CUDA's row-parallel kernel of large groups)."""
    m, sc = partner_term(P, t, s, nP, nC)
    j = G.perm[t]
    wj = weight(R.w, R.has_w, j)
    gj = g[j - R.ro]
    hj = h[j - R.ro]
    for q in range(nP):
        zi, pi, di, wi = row_values(R, G.perm[s + q])
        act, _, _, gq, hq = pair_terms(P.loss_kind, zi, pi, di, R, j, m, sc * wi * wj)
        if act:
            gj += gq
            hj += hq
    g[j - R.ro] = gj
    h[j - R.ro] = hj


@_outlined
def exact_pairs_group(a, R, G, P, S, g, h):
    """Every pair of active group a, O(|P|·|partners|): the exact mode of losses without a closed form."""
    s, e, nP, nC = group_span(G, a)
    for t in range(s, s + nP):
        all_pairs_conversion(R, G, P, s, nP, nC, e, t, g, h, True)


# --------------------------------------------------------------------------- sampled pairs


@_inlined
def sampled_conversion(R, G, P, s, nP, nC, e, t, g, h, atomic):
    """k drawn partners per term for the conversion at position t (counter (i*2+term)*k+draw)."""
    i = G.perm[t]
    zi, pi, di, wi = row_values(R, i)
    k = P.k
    for term in range(2):
        base, je, m, sc = term_span(P, term, s, nP, nC, e)
        nT = je - base
        if nT == 0 or sc == 0.0:
            continue
        fac = sc * wi * nT / k
        for dd in range(k):
            j = G.perm[base + draw_index(P.key, (np.int64(i) * 2 + term) * k + dd, nT)]
            act, gi, hi, gj, hj = pair_terms(P.loss_kind, zi, pi, di, R, j, m, fac * weight(R.w, R.has_w, j))
            if act:
                g[i - R.ro] += gi
                h[i - R.ro] += hi
                add_at(g, j - R.ro, gj, atomic)
                add_at(h, j - R.ro, hj, atomic)


@_outlined
def sampled_group(a, R, G, P, S, g, h):
    """k drawn partners per conversion and term of active group a, with the round key P.key."""
    s, e, nP, nC = group_span(G, a)
    for t in range(s, s + nP):
        sampled_conversion(R, G, P, s, nP, nC, e, t, g, h, False)


# --------------------------------------------------------------------------- one active group


def pair_group(a, R, G, P, S, g, h):
    """Add the λ·PWiseR gradient/Hessian of active group a to g, h (one thread).

    On CUDA (and in the simulator) the group function is chosen at run time from ``P.k`` and
    ``P.loss_kind``; on the CPU while compiling, from the type of ``P.key`` (:func:`mode_key`), so
    that a fit compiles its own mode only (a branch at run time compiled all three, ~1.5 s of
    every first fit).
    """
    if P.k > 0:
        sampled_group(a, R, G, P, S, g, h)
    elif P.loss_kind == LOSS_SQUARED_HINGE:
        exact_sq_hinge_group(a, R, G, P, S, g, h)
    else:
        exact_pairs_group(a, R, G, P, S, g, h)


def mode_key(k, key, loss_kind):
    """The CPU's ``Pairs.key``, whose type selects :func:`pair_group`'s group function while
    compiling: None for the exact squared hinge, False for the exact mode of other losses, the
    round key (uint64) for k draws."""
    if k != 0:
        return np.uint64(key)
    return None if loss_kind == LOSS_SQUARED_HINGE else False


def _cpu_group_function(pairs_type):
    key = pairs_type[Pairs._fields.index("key")]
    if isinstance(key, types.NoneType):
        return exact_sq_hinge_group
    if isinstance(key, types.Boolean):
        return exact_pairs_group
    return sampled_group


def _pair_group_cpu(a, R, G, P, S, g, h):
    # inlined into the drivers' group loops; no reference counting (see scalars._register: per
    # group, ~20 arrays counted twice)
    return _cpu_group_function(P)


def _pair_group_cuda(a, R, G, P, S, g, h):
    return pair_group


# ``_nrt`` is a real jit option that Numba's stubs do not list (see scalars._register)
overload(pair_group, target="cpu", jit_options={"forceinline": True, "_nrt": False})(  # type: ignore[typeddict-unknown-key]
    _pair_group_cpu
)
overload(pair_group, target="cuda", strict=False)(_pair_group_cuda)
