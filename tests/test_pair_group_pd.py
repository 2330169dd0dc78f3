"""The CPU pair path (p and σ' read from the BCE pass, ``shared.pair_group_pd``) gives the bits of
the per-partner path the CUDA group kernel runs (``shared.pair_group``, a sigmoid per partner)."""

import numpy as np
import pytest
from numba import njit

from gbdt_pwiser import prepare_data
from gbdt_pwiser._defaults import HESSIAN_FLOOR
from gbdt_pwiser.kernels import cpu as K
from gbdt_pwiser.kernels import scalars as SC
from gbdt_pwiser.kernels import shared as S


@njit(cache=False)
def _per_partner(z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
                 g, h, sp, si, tp, ti, pa, pb, bw, bwp):
    for a in range(aptr.size - 1):
        S.pair_group(a, z, w, has_w, perm, aptr, anP, anC, pptr, sc_c, sc_n, m1, m2, loss_kind, k, key,
                     g, h, sp, si, tp, ti, pa, pb, bw, bwp)


@pytest.mark.parametrize("loss_kind", [SC.LOSS_SQUARED_HINGE, SC.LOSS_LOGISTIC])
@pytest.mark.parametrize("k", [0, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sizes", [(25, 0.3, 0.4), (200, 0.5, 0.6)])  # 200: > 32 conversions, merge sort
def test_pd_path_is_bitwise_the_per_partner_path(loss_kind, k, weighted, sizes):
    size, ctr, cvr = sizes
    rng = np.random.default_rng(size + k + 7 * loss_kind + weighted)
    n = 400 * size + 13  # > CHUNK_ROWS rows: several chunks
    click = rng.random(n) < ctr
    y = (click.astype(np.int8) + (click & (rng.random(n) < cvr)).astype(np.int8)).astype(np.int8)
    z = rng.normal(-1.0, 1.5, n).astype(np.float32)
    w = rng.uniform(0.0, 2.0, n) if weighted else None
    ptr = np.arange(0, n + size, size).clip(max=n)
    data = prepare_data(y, group_ptr=ptr, weight=w)
    assert data.n_active_groups > 0
    assert np.any(data.anP > 1)  # the general path (sorting, buckets)
    assert size > 25 or np.any(data.anP == 1)  # and the one-conversion path
    sc_c, sc_n = data.scales(1.3)
    key = K.round_key(5, 2)
    scratch = data.scratch()
    pp, pd = (np.array(b) for b in data.row_buffers(n))  # p and σ' of every row
    g = np.empty(n)
    h = np.empty(n)
    K.bce_pass_pd(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g, h, pp, pd)
    g_ref, h_ref = np.empty(n), np.empty(n)
    K.bce_pass(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, g_ref, h_ref)
    assert np.array_equal(g, g_ref) and np.array_equal(h, h_ref)
    g_bce = g.copy()
    K.pair_pass(z, data.w, data.has_w, data.perm, data.aptr, data.anP, data.anC, data.pptr, sc_c, sc_n,
                0.03, 0.05, loss_kind, k, key, g, h, *scratch, pp, pd)
    sp, si, pa, pb, bw, bwp = (np.empty_like(x) for x in scratch)
    _per_partner(z, data.w, data.has_w, data.perm, data.aptr, data.anP, data.anC, data.pptr, sc_c, sc_n,
                 0.03, 0.05, loss_kind, k, key, g_ref, h_ref, sp, si, np.empty_like(sp), np.empty_like(si),
                 pa, pb, bw, bwp)
    assert np.array_equal(g, g_ref) and np.array_equal(h, h_ref)
    assert np.any(g != g_bce)  # the pair terms did add something
    # the fused pass of contiguous groups (BCE then pairs, chunk by chunk) gives the same bits
    assert data.chunks is not None and data.chunks[0].size > 2  # several chunks
    g2, h2 = np.full(n, np.nan), np.full(n, np.nan)
    # p and σ' of one chunk at a time (row r at r - r0): buffers of the largest chunk, not of n rows
    rows = data.max_chunk_rows
    assert 0 < rows < n // 2
    pp_c, pd_c = np.full(rows, np.nan), np.full(rows, np.nan)
    K.bce_pair_pass(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, *data.chunks, data.perm, data.aptr, data.anP,
                    data.anC, data.pptr, sc_c, sc_n, 0.03, 0.05, loss_kind, k, key, g2, h2, *scratch, pp_c, pd_c)
    assert np.array_equal(g2, g_ref) and np.array_equal(h2, h_ref)
    with pytest.raises(ValueError, match="smaller than the largest chunk"):
        K.bce_pair_pass(z, data.y, data.w, data.has_w, HESSIAN_FLOOR, *data.chunks, data.perm, data.aptr,
                        data.anP, data.anC, data.pptr, sc_c, sc_n, 0.03, 0.05, loss_kind, k, key, g2, h2, *scratch,
                        pp_c[:rows - 1], pd_c[:rows - 1])
