"""The CPU passes of one round, each cut into parts run on the objectives' threads.

A pass splits its rows, its active groups or its chunks into one contiguous range per thread and
hands the ranges to :func:`gbdt_pwiser._threads.run_parts`, which runs the kernels of
:mod:`gbdt_pwiser.kernels.cpu` (one thread each, without the GIL) at the same time. Every row is
written by one part, in the order one thread would write it, so gradients and Hessians are the
same bits whatever the number of threads. Sums (the loss values) are taken over fixed blocks of
``SUM_BLOCK`` rows or ``SUM_GROUPS`` groups and added in block order: the same bits too.

Called by :mod:`gbdt_pwiser.objectives`, which validates the inputs and picks the thread count
(:func:`gbdt_pwiser._threads.resolve_threads`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._threads import run_parts
from . import cpu as K
from .groups import Groups, Pairs, Rows, Scratch

#: Rows per block of a sum (the loss values): fixed, so the sum is the same whatever the threads.
SUM_BLOCK = 65_536
#: Active groups per block of a sum.
SUM_GROUPS = 4096


def bounds(n: int, parts: int) -> list[int]:
    """Boundaries of ``parts`` contiguous ranges of ``n`` items, as equal as they come."""
    return [n * p // parts for p in range(parts + 1)]


def _cut(args: tuple, n: int, r0: int, r1: int) -> list:
    # every argument that holds one entry per row is cut to rows r0:r1 (w sliced even when empty:
    # the view is empty too, and the kernels' types stay those of the whole arrays)
    return [a[r0:r1] if isinstance(a, np.ndarray) and a.ndim and a.shape[0] in (n, 0) else a for a in args]


def rows(kernel: Callable, n: int, threads: int, *args: Any) -> list:
    """``kernel(*args)`` on every row: one part per thread, each with its rows of the per-row arrays.
    Returns what each part's kernel returned, in row order."""
    b = bounds(n, max(1, min(threads, n)))
    out: list = [None] * (len(b) - 1)

    def part(p: int) -> None:
        out[p] = kernel(*_cut(args, n, b[p], b[p + 1]))

    run_parts(part, len(out))
    return out


def _block_sum(block: Callable[[int], Any], n_blocks: int, threads: int) -> Any:
    """Σ of ``block(b)`` over ``b < n_blocks`` (floats or tuples of floats), added in block order;
    thread t runs blocks t, t + threads, ..."""
    out: list = [None] * n_blocks
    parts = max(1, min(threads, n_blocks))

    def part(p: int) -> None:
        for b in range(p, n_blocks, parts):
            out[b] = block(b)

    run_parts(part, parts)
    total = out[0]
    for v in out[1:]:
        total = tuple(a + b for a, b in zip(total, v, strict=True)) if isinstance(total, tuple) else total + v
    return total


def row_sum(kernel: Callable, n: int, threads: int, *args: Any) -> Any:
    """Σ of ``kernel(*args)`` over blocks of ``SUM_BLOCK`` rows (per-row arrays cut), in block order."""
    return _block_sum(
        lambda b: kernel(*_cut(args, n, b * SUM_BLOCK, min(n, (b + 1) * SUM_BLOCK))),
        max(1, -(-n // SUM_BLOCK)),
        threads,
    )


def group_sum(kernel: Callable, n_groups: int, threads: int, *args: Any) -> Any:
    """Σ of ``kernel(a0, a1, *args)`` over blocks of ``SUM_GROUPS`` active groups, in block order."""
    return _block_sum(
        lambda b: kernel(b * SUM_GROUPS, min(n_groups, (b + 1) * SUM_GROUPS), *args),
        max(1, -(-n_groups // SUM_GROUPS)),
        threads,
    )


# --------------------------------------------------------------------------- the passes of a round


def bce_pass(
    z: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    has_w: bool,
    floor: float,
    g: np.ndarray,
    h: np.ndarray,
    threads: int = 1,
) -> int:
    """BCE gradient and floored Hessian of every row (λ = 0). Returns the number of margins that
    are NaN or infinite, like the other passes (the kernels count them as they read them)."""
    return sum(rows(K.bce_rows, z.shape[0], threads, z, y, w, has_w, floor, g, h))


def pair_pass(
    R: Rows,
    floor: float,
    G: Groups,
    P: Pairs,
    S: Scratch,
    acc: tuple[np.ndarray, np.ndarray],
    g: np.ndarray,
    h: np.ndarray,
    threads: int = 1,
) -> int:
    """BCE of every row (storing p and σ' in ``R.pp``/``R.pd``), then the pair terms of every
    active group: two passes, for groups in any row order. Returns the number of non-finite margins.

    ``R``, ``G``, ``P``, ``S``: :class:`~gbdt_pwiser.kernels.groups.Rows` (``R.pp``/``R.pd`` hold
    every row, ``R.ro`` = 0), ``Groups``, ``Pairs`` (with the round key) and ``Scratch``. The BCE
    pass writes ``g, h`` (float32 for a booster); the rows of active groups are summed again in
    ``acc``, float64 sums of every row (touched at those rows only), and stored in ``g, h`` group by
    group (:func:`~gbdt_pwiser.kernels.cpu.pair_groups`).
    """
    n = R.z.shape[0]
    ga, ha = acc
    if min(R.pp.size, R.pd.size, ga.size, ha.size) < n or R.ro != 0:
        raise ValueError("pair_pass: the p/σ' and sum buffers must hold every row (ro = 0)")
    bad = sum(rows(K.bce_rows_pd, n, threads, R.z, R.y, R.w, R.has_w, floor, g, h, R.pp[:n], R.pd[:n]))
    A = G.aptr.size - 1
    b = bounds(A, max(1, min(threads, A)))
    P = K.cpu_pairs(P)
    run_parts(lambda p: K.pair_groups(b[p], b[p + 1], R, G, P, S, floor, ga, ha, g, h), len(b) - 1)
    return bad


def bce_pair_pass(
    R: Rows,
    floor: float,
    crow: np.ndarray,
    cgrp: np.ndarray,
    G: Groups,
    P: Pairs,
    S: Scratch,
    acc: tuple[np.ndarray, np.ndarray],
    g: np.ndarray,
    h: np.ndarray,
    threads: int = 1,
) -> int:
    """BCE then pair terms chunk by chunk (:func:`~gbdt_pwiser.kernels.cpu.bce_pair_chunks`), for
    contiguous groups: one part per thread, a range of chunks each. Returns the number of
    non-finite margins.

    ``R.pp``/``R.pd`` hold p and σ' of one chunk per part, and ``acc`` its float64 gradient and
    Hessian sums, stored in ``g, h`` (float32 for a booster) when the chunk is done: each at least
    ``parts × largest chunk`` rows (``parts = min(threads, chunks)``; 32 B per row of the largest
    chunk and part, not per row).
    """
    C = crow.size - 1
    parts = max(1, min(threads, C))
    rows_ = int(np.max(np.diff(crow))) if C > 0 else 0
    if min(R.pp.size, R.pd.size, acc[0].size, acc[1].size) < parts * rows_:
        raise ValueError("bce_pair_pass: the p/σ' or sum buffers are smaller than the largest chunk times the parts")
    b = bounds(C, parts)
    P = K.cpu_pairs(P)
    bad = [0] * parts

    def part(p: int) -> None:
        c0, c1 = b[p], b[p + 1]
        own = slice(p * rows_, (p + 1) * rows_)
        buf = Rows(R.z, R.y, R.w, R.has_w, R.pp[own], R.pd[own], 0)
        bad[p] = K.bce_pair_chunks(
            buf, floor, crow[c0 : c1 + 1], cgrp[c0 : c1 + 1], G, P, S, acc[0][own], acc[1][own], g, h
        )

    run_parts(part, parts)
    return sum(bad)


def bce_loss(z: np.ndarray, y: np.ndarray, w: np.ndarray, has_w: bool, threads: int = 1) -> float:
    """Σ w BCE over the rows."""
    return float(row_sum(K.bce_loss_rows, z.shape[0], threads, z, y, w, has_w))


def pair_loss_sums(
    z: np.ndarray, w: np.ndarray, has_w: bool, G: Groups, m1: float, m2: float, loss_kind: int, threads: int = 1
) -> tuple[float, float]:
    """Per-term sums Σ w_i w_j φ(i, j) over every active group (exact)."""
    c, n = group_sum(K.pair_loss_groups, G.aptr.size - 1, threads, z, w, has_w, G, m1, m2, loss_kind)
    return float(c), float(n)
