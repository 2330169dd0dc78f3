"""Once-per-training preparation of labels, weights and groups for the kernels."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..kernels import cpu as K
from ..kernels.groups import Groups, Scratch

_EMPTY_F = np.zeros(0, dtype=np.float64)


@dataclass
class PreparedData:
    """Everything about the training data that stays fixed across boosting rounds.

    ``perm`` lists the rows of the *active* groups (a conversion and at least one
    partner), each group laid out as ``[P | C | N]``; ``aptr`` delimits the groups
    in ``perm``; ``anP``/``anC`` give their conversion and click-only counts;
    ``pptr`` is the offset of each group's conversions in the per-round scratch.
    ``pair_weight_c``/``pair_weight_n`` are the total pair weights
    ``Σ_G W_P,G · W_C,G`` and ``Σ_G W_P,G · W_N,G`` that normalise each term.

    Extension point: ``total_weight``, ``pair_weight_c`` and ``pair_weight_n``
    are read only through :meth:`scales`, so a subclass of
    :class:`~gbdt_pwiser.objectives.PWiseRObjective` may overwrite them in its
    ``_prepare`` with totals over the whole data set (data-parallel training)
    while ``perm``/``aptr``… describe the local rows.
    """

    n: int
    y: np.ndarray
    w: np.ndarray
    has_w: bool
    total_weight: float
    pair_weight_c: float
    pair_weight_n: float
    n_groups: int
    perm: np.ndarray
    aptr: np.ndarray
    anP: np.ndarray
    anC: np.ndarray
    pptr: np.ndarray
    #: ``(crow, cgrp)`` when every group is a contiguous row range (:func:`prepare_ptr`): chunk c
    #: covers rows ``crow[c]:crow[c+1]`` and holds the active groups ``cgrp[c]:cgrp[c+1]`` whole,
    #: so one pass computes a chunk's BCE terms and then its pair terms while its rows are in
    #: cache (``passes.bce_pair_pass``, a range of chunks per thread); None for scattered groups
    #: (then two passes)
    chunks: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _scratch: Scratch | None = field(default=None, repr=False)
    _rows: tuple | None = field(default=None, repr=False)

    @property
    def n_active_groups(self) -> int:
        return int(self.aptr.size - 1)

    @functools.cached_property
    def groups(self) -> Groups:
        """The active groups as the kernels take them (:class:`~gbdt_pwiser.kernels.groups.Groups`)."""
        return Groups(self.perm, self.aptr, self.anP, self.anC, self.pptr)

    def scratch(self) -> Scratch:
        """Per-round scratch of the pair terms (:class:`~gbdt_pwiser.kernels.groups.Scratch`),
        allocated once and reused every round. The merge-sort ping-pong ``tp``/``ti`` is touched
        only by groups with more than 32 conversions (untouched pages cost no memory)."""
        if self._scratch is None:
            nP = int(self.pptr[-1]) if self.pptr.size else 0
            A = self.n_active_groups
            f = [np.empty(nP + A, dtype=np.float64) for _ in range(4)]
            self._scratch = Scratch(
                np.empty(nP, dtype=np.float64),
                np.empty(nP, dtype=np.int64),
                np.empty(nP, dtype=np.float64),
                np.empty(nP, dtype=np.int64),
                *f,
            )
        return self._scratch

    @functools.cached_property
    def max_chunk_rows(self) -> int:
        """Rows of the largest chunk of the chunked pass (0 without chunks)."""
        if self.chunks is None or self.chunks[0].size < 2:
            return 0
        return int(np.max(np.diff(self.chunks[0])))

    def row_buffers(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """float64 buffers for p, σ', and the gradient and Hessian sums of ``rows`` rows (every row:
        ``passes.pair_pass``; one chunk per part at a time: ``passes.bce_pair_pass``), kept across
        rounds and grown when a call needs more (the two-pass path writes the sums at the rows of
        active groups only: pages it never writes take no memory)."""
        if self._rows is None or self._rows[0].size < rows:
            self._rows = (np.empty(rows), np.empty(rows), np.empty(rows), np.empty(rows))
        return self._rows

    def scales(self, lam: float) -> tuple[float, float]:
        """λ·W / (total pair weight) of each term; 0 for a term without pairs."""
        sc_c = lam * self.total_weight / self.pair_weight_c if self.pair_weight_c > 0 else 0.0
        sc_n = lam * self.total_weight / self.pair_weight_n if self.pair_weight_n > 0 else 0.0
        return sc_c, sc_n


def _finish(y, w, has_w, counts, wsum):
    active_mask = (counts[:, 0] > 0) & ((counts[:, 1] + counts[:, 2]) > 0)
    active = np.flatnonzero(active_mask).astype(np.int64)
    sizes = counts[active].sum(axis=1)
    aptr = np.zeros(active.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=aptr[1:])
    anP = np.ascontiguousarray(counts[active, 0])
    anC = np.ascontiguousarray(counts[active, 1])
    pptr = np.zeros(active.size + 1, dtype=np.int64)
    np.cumsum(anP, out=pptr[1:])
    # No BLAS here: over 10,000 groups np.dot takes OpenBLAS's threaded path, whose worker then
    # spins ~0.1 s against the booster's own threads (measured +20-40 ms CPU per LightGBM fit on
    # 2 cores at 300k rows); an element-wise product and a sum cost 0.03 ms.
    pw_c = float(np.sum(wsum[:, 0] * wsum[:, 1]))
    pw_n = float(np.sum(wsum[:, 0] * wsum[:, 2]))
    total = float(wsum.sum())
    return active, aptr, anP, anC, pptr, pw_c, pw_n, total


#: Rows per chunk of the fused pass: a chunk's margins, labels, g, h, p and σ' (~37 B/row,
#: ~150 KB) stay in a core's L2 cache between its BCE and its pair terms.
CHUNK_ROWS = 4096


def _chunks(gptr: np.ndarray, active: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunks of ~CHUNK_ROWS rows that end where an active group ends (see PreparedData.chunks)."""
    hi = gptr[active + 1]
    cut = np.flatnonzero(np.diff(hi // CHUNK_ROWS)) + 1
    cgrp = np.concatenate(([0], cut, [active.size])).astype(np.int64)
    crow = np.concatenate(([0], hi[cgrp[1:-1] - 1], [n])).astype(np.int64)
    return crow, cgrp


def prepare_ptr(y: np.ndarray, w: np.ndarray | None, gptr: np.ndarray) -> PreparedData:
    """Prepare data whose groups are contiguous row ranges ``gptr[g]:gptr[g+1]``.

    No sort and no hashing: XGBoost's ``group_ptr`` and LightGBM's group sizes
    arrive in this form.
    """
    has_w = w is not None
    wk = w if w is not None else _EMPTY_F
    gptr = np.ascontiguousarray(gptr, dtype=np.int64)
    # one light O(n) pass, once per training run, on one thread
    counts, wsum = K.group_stats_ptr(y, wk, has_w, gptr)
    active, aptr, anP, anC, pptr, pw_c, pw_n, total = _finish(y, wk, has_w, counts, wsum)
    perm = np.empty(int(aptr[-1]), dtype=np.int64)
    K.fill_perm_ptr(y, gptr, active, aptr, counts, perm)
    chunks = _chunks(gptr, active, y.size) if active.size else None
    return PreparedData(y.size, y, wk, has_w, total, pw_c, pw_n, gptr.size - 1, perm, aptr, anP, anC, pptr, chunks)


def prepare_codes(y: np.ndarray, w: np.ndarray | None, codes: np.ndarray, n_groups: int) -> PreparedData:
    """Prepare data with per-row group codes ``0..n_groups-1`` in any order (O(n), no sort)."""
    has_w = w is not None
    wk = w if w is not None else _EMPTY_F
    counts, wsum = K.group_stats_codes(y, wk, has_w, codes, n_groups)
    active, aptr, anP, anC, pptr, pw_c, pw_n, total = _finish(y, wk, has_w, counts, wsum)
    slot = np.full(n_groups, -1, dtype=np.int64)
    slot[active] = np.arange(active.size, dtype=np.int64)
    perm = np.empty(int(aptr[-1]), dtype=np.int64)
    K.fill_perm_codes(y, codes, slot, aptr, counts, active, perm)
    return PreparedData(y.size, y, wk, has_w, total, pw_c, pw_n, n_groups, perm, aptr, anP, anC, pptr)


def ptr_from_sizes(sizes: np.ndarray, n: int, source: str) -> np.ndarray:
    """Group boundaries from group sizes (or from boundaries already), checked against n."""
    sizes = np.asarray(sizes, dtype=np.int64).ravel()
    if sizes.size and sizes[0] == 0 and sizes[-1] == n and np.all(np.diff(sizes) >= 0) and sizes.sum() != n:
        return sizes  # already boundaries
    if np.any(sizes < 0) or sizes.sum() != n:
        raise ValueError(f"{source}: group sizes sum to {int(sizes.sum())} but there are {n} rows")
    ptr = np.zeros(sizes.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    return ptr
