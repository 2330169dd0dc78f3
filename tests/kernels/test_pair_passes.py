"""The CPU pair passes against one another and against the group functions called one by one.

Every pass (the chunked pass of contiguous groups, the BCE pass then the pair pass, on 1, 2 and
3 threads: parts over chunks, rows and groups) calls :func:`groups.pair_group`, the function the CUDA group kernel calls
(``tests/gpu``: bitwise in the simulator), so all of them give the bits of a plain loop over the
active groups. The values themselves are checked against the naive double loop and finite
differences in ``tests/objectives/test_objective.py``.
"""

import numpy as np
import pytest
from numba import njit

from gbdt_pwiser import prepare_data
from gbdt_pwiser._defaults import HESSIAN_FLOOR
from gbdt_pwiser.kernels import cpu as K
from gbdt_pwiser.kernels import groups as GR
from gbdt_pwiser.kernels import passes as KP
from gbdt_pwiser.kernels import scalars as SC


@njit(cache=False)
def _group_by_group(R, G, P, S, g, h, which):
    # each group function called directly (which: 0 exact squared hinge, 1 every pair, 2 sampled):
    # the reference for the drivers, which reach them through pair_group's choice
    for a in range(G.aptr.size - 1):
        if which == 0:
            GR.exact_sq_hinge_group(a, R, G, P, S, g, h)
        elif which == 1:
            GR.exact_pairs_group(a, R, G, P, S, g, h)
        else:
            GR.sampled_group(a, R, G, P, S, g, h)


@njit(cache=False)
def _general_path(R, G, P, S, g, h):
    # exact_sq_hinge_group's general path (sort, prefix sums, buckets) for every group, one
    # conversion or more: the reference for sq_hinge_single, which must give the same bits
    for a in range(G.aptr.size - 1):
        s, e, nP, nC = GR.group_span(G, a)
        po = G.pptr[a]
        bo = po + a
        for q in range(nP):
            GR.load_conversion(R, G.perm, s, q, S.sp, S.si, po)
        GR.sort_conversions(S.sp, S.si, S.tp, S.ti, po, nP)
        GR.conversion_prefix(R, S, po, bo, nP)
        for term in range(2):
            js, je, m, sc = SC.term_span(P, term, s, nP, nC, e)
            if je == js or sc == 0.0:
                continue
            GR.clear_buckets(S, bo, nP)
            for t in range(js, je):
                GR.sq_hinge_partner(R, S, G.perm[t], po, nP, bo, bo, m, sc, g, h, False)
            GR.sq_hinge_suffix(R, S, po, nP, bo, m, sc, g, h)


def _data(size, ctr, cvr, weighted, seed):
    rng = np.random.default_rng(seed)
    n = 400 * size + 13  # > CHUNK_ROWS rows: several chunks
    click = rng.random(n) < ctr
    y = (click.astype(np.int8) + (click & (rng.random(n) < cvr)).astype(np.int8)).astype(np.int8)
    z = rng.normal(-1.0, 1.5, n).astype(np.float32)
    w = rng.uniform(0.0, 2.0, n) if weighted else None
    ptr = np.arange(0, n + size, size).clip(max=n)
    return z, prepare_data(y, group_ptr=ptr, weight=w)


@pytest.mark.parametrize("loss_kind", [SC.LOSS_SQUARED_HINGE, SC.LOSS_LOGISTIC])
@pytest.mark.parametrize("k", [0, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sizes", [(25, 0.3, 0.4), (200, 0.5, 0.6)])  # 200: > 32 conversions, merge sort
def test_every_driver_gives_the_bits_of_the_group_functions(loss_kind, k, weighted, sizes):
    size, ctr, cvr = sizes
    z, data = _data(size, ctr, cvr, weighted, size + k + 7 * loss_kind + weighted)
    n = data.n
    assert data.n_active_groups > 0
    assert np.any(data.anP > 1)  # the general path (sorting, buckets)
    assert size > 25 or np.any(data.anP == 1)  # and the one-conversion path
    sc_c, sc_n = data.scales(1.3)
    P = GR.Pairs(sc_c, sc_n, 0.03, 0.05, loss_kind, k, K.round_key(5, 2))
    pp, pd = np.empty(n), np.empty(n)  # p and σ' of every row
    g_ref, h_ref = np.empty(n), np.empty(n)
    K.bce_rows_pd(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g_ref, h_ref, pp, pd)
    g_bce, h_bce = np.empty(n), np.empty(n)
    K.bce_rows(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g_bce, h_bce)
    assert np.array_equal(g_ref, g_bce) and np.array_equal(h_ref, h_bce)
    R = GR.Rows(z, data.y, data.w, data.has_w, pp, pd, 0)
    which = 2 if k else (0 if loss_kind == SC.LOSS_SQUARED_HINGE else 1)
    _group_by_group(R, data.groups, P, data.scratch(), g_ref, h_ref, which)
    assert np.any(g_ref != g_bce)  # the pair terms did add something

    # the two passes (BCE of every row, then the groups) and the chunked pass of contiguous groups,
    # on 1, 2 and 3 threads (parts over rows, groups, chunks): the same bits
    assert data.chunks is not None and data.chunks[0].size > 3  # at least 3 chunks: one part per thread
    rows = data.max_chunk_rows
    assert 0 < rows < n // 2
    for threads in (1, 2, 3):
        R2 = GR.Rows(z, data.y, data.w, data.has_w, np.full(n, np.nan), np.full(n, np.nan), 0)
        # float64 outputs (grad_hess's), and float32 (a booster's): the float64 sums rounded once
        for dtype in (np.float64, np.float32):
            g, h = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
            acc = (np.full(n, np.nan), np.full(n, np.nan))
            KP.pair_pass(R2, HESSIAN_FLOOR, data.groups, P, data.scratch(), acc, g, h, threads)
            assert np.array_equal(g, g_ref.astype(dtype)) and np.array_equal(h, h_ref.astype(dtype))
        # p, σ' and the sums of one chunk per part at a time (row r at r - r0): buffers of the largest
        # chunk; float64 and float32 outputs
        for dtype in (np.float64, np.float32):
            g2, h2 = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
            Rc = GR.Rows(z, data.y, data.w, data.has_w, *(np.full(threads * rows, np.nan) for _ in range(2)), 0)
            acc = (np.full(threads * rows, np.nan), np.full(threads * rows, np.nan))
            KP.bce_pair_pass(Rc, HESSIAN_FLOOR, *data.chunks, data.groups, P, data.scratch(), acc, g2, h2, threads)
            assert np.array_equal(g2, g_ref.astype(dtype)) and np.array_equal(h2, h_ref.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_pass_counts_the_non_finite_margins(dtype):
    """The passes count NaN and ±inf margins as they read them (the objective raises on a count):
    every pass, 1-3 threads, at the first and last row and at chunk boundaries; 0 for finite ones,
    the largest finite values included."""
    z0, data = _data(25, 0.3, 0.4, True, 11)
    n = data.n
    P = GR.Pairs(*data.scales(1.0), 0.03, 0.05, SC.LOSS_SQUARED_HINGE, 0, K.round_key(0, 0))
    crow = data.chunks[0]
    rng = np.random.default_rng(0)
    big = np.finfo(dtype).max
    B = K.ROW_BLOCK
    places = [
        [],
        [0, n - 1],
        [int(crow[1]), int(crow[1]) - 1, int(crow[2])],  # chunk boundaries
        [B - 1, B, 2 * B, n // 2, n // 2 + 1],  # the row kernels' blocks (of a part, and of a 2-part pass)
        list(rng.choice(n, 9, replace=False)),
    ]
    for rows_ in places:
        z = z0.astype(dtype)
        z[: n // 2 : 97] = big  # finite, however large
        z[1 : n // 2 : 89] = -big
        bad = [np.nan, np.inf, -np.inf]
        for i, r in enumerate(rows_):
            z[r] = bad[i % 3]
        want = int(np.count_nonzero(~np.isfinite(z)))
        assert want == len(set(rows_))
        for threads in (1, 2, 3):
            g, h = np.empty(n, np.float32), np.empty(n, np.float32)
            assert KP.bce_pass(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g, h, threads) == want
            m = max(n, threads * data.max_chunk_rows)  # every row's p (two passes), or a chunk's per part
            R = GR.Rows(z, data.y, data.w, data.has_w, np.empty(m), np.empty(m), 0)
            acc = (np.empty(m), np.empty(m))
            assert KP.pair_pass(R, HESSIAN_FLOOR, data.groups, P, data.scratch(), acc, g, h, threads) == want
            assert (
                KP.bce_pair_pass(R, HESSIAN_FLOOR, *data.chunks, data.groups, P, data.scratch(), acc, g, h, threads)
                == want
            )


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("margins", ["random", "labels", "equal"])
def test_one_conversion_groups_give_the_bits_of_the_general_path(weighted, margins):
    """sq_hinge_single (no sort, no buckets, no branch on a partner's activity) against the general
    path on the same groups: the same bits, with active and inactive partners, zero weights and
    the margins' ties."""
    z, data = _data(25, 0.3, 0.4, weighted, 21 + weighted)
    assert np.count_nonzero(data.anP == 1) > 50
    y = data.y
    if margins == "labels":
        z = (-1.0 + 0.6 * (y >= 1) + 0.6 * (y == 2) + np.random.default_rng(2).normal(0, 0.4, y.size)).astype(z.dtype)
    elif margins == "equal":
        z = np.where(np.arange(y.size) % 3 == 0, -1.0, z).astype(z.dtype)  # partners tied with conversions
    n = data.n
    for m1, m2 in ((0.03, 0.05), (0.0, 0.4), (-0.05, 0.0)):
        P = GR.Pairs(*data.scales(1.3), m1, m2, SC.LOSS_SQUARED_HINGE, 0, K.round_key(0, 0))
        pp, pd, g0, h0 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        K.bce_rows_pd(z, y, data.w, data.has_w, HESSIAN_FLOOR, g0, h0, pp, pd)
        R = GR.Rows(z, y, data.w, data.has_w, pp, pd, 0)
        g1, h1 = g0.copy(), h0.copy()
        _group_by_group(R, data.groups, P, data.scratch(), g1, h1, 0)  # sq_hinge_single where nP == 1
        g2, h2 = g0.copy(), h0.copy()
        _general_path(R, data.groups, P, data.scratch(), g2, h2)
        assert np.array_equal(g1.view(np.int64), g2.view(np.int64)), (m1, m2)
        assert np.array_equal(h1.view(np.int64), h2.view(np.int64)), (m1, m2)
        assert np.any(g1 != g0)


def test_buffers_too_small_are_refused():
    z, data = _data(25, 0.3, 0.4, False, 0)
    P = GR.Pairs(1.0, 1.0, 0.03, 0.05, SC.LOSS_SQUARED_HINGE, 0, K.round_key(0, 0))
    g, h = np.empty(data.n), np.empty(data.n)
    rows = data.max_chunk_rows
    R = GR.Rows(z, data.y, data.w, data.has_w, np.empty(2 * rows), np.empty(2 * rows), 0)
    short = R._replace(pp=np.empty(2 * rows - 1))
    acc = (np.empty(2 * rows), np.empty(2 * rows))
    KP.bce_pair_pass(short, HESSIAN_FLOOR, *data.chunks, data.groups, P, data.scratch(), acc, g, h, 1)
    with pytest.raises(ValueError, match="smaller than the largest chunk"):
        KP.bce_pair_pass(short, HESSIAN_FLOOR, *data.chunks, data.groups, P, data.scratch(), acc, g, h, 2)
    with pytest.raises(ValueError, match="smaller than the largest chunk"):
        KP.bce_pair_pass(R, HESSIAN_FLOOR, *data.chunks, data.groups, P, data.scratch(), (acc[0][1:], acc[1]), g, h, 2)
    with pytest.raises(ValueError, match="must hold every row"):
        KP.pair_pass(short, HESSIAN_FLOOR, data.groups, P, data.scratch(), (g, h), g, h, 2)
    with pytest.raises(ValueError, match="must hold every row"):
        KP.pair_pass(R._replace(pp=g, pd=h), HESSIAN_FLOOR, data.groups, P, data.scratch(), (g[1:], h), g, h, 2)


@pytest.mark.parametrize("weighted", [False, True])
def test_squared_hinge_loss_closed_form_is_the_pair_by_pair_sum(weighted):
    """The exact squared hinge's loss by prefix sums equals the sum of ``pair_value`` over every pair."""
    z, data = _data(60, 0.4, 0.5, weighted, 3)
    G = data.groups
    got = KP.pair_loss_sums(z, data.w, data.has_w, G, 0.03, 0.05, SC.LOSS_SQUARED_HINGE, 2)
    w = data.w if data.has_w else np.ones(data.n)
    p = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    want = [0.0, 0.0]
    for a in range(data.n_active_groups):
        s, e, nP, nC = G.aptr[a], G.aptr[a + 1], G.anP[a], G.anC[a]
        conv, click, rest = G.perm[s : s + nP], G.perm[s + nP : s + nP + nC], G.perm[s + nP + nC : e]
        for term, (part, m) in enumerate(((click, 0.03), (rest, 0.05))):
            d = np.maximum(p[part][None, :] - p[conv][:, None] + m, 0.0)
            want[term] += float(np.sum(w[conv][:, None] * w[part][None, :] * d * d))
    np.testing.assert_allclose(got, want, rtol=1e-10)
