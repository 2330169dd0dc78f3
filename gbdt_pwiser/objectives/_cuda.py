"""Host side of ``device="cuda"``: device data, launches and buffers (numba-cuda).

``PWiseRObjective(device="cuda")`` and ``EntireSpaceCVRObjective(device="cuda")``
call :func:`pwiser_grad_hess_cuda` / :func:`esmm_grad_hess_cuda`; the kernels
are :mod:`gbdt_pwiser.kernels.cuda` (their mathematics
:mod:`gbdt_pwiser.kernels.groups`, the CPU's). This module lives in
the objectives layer because it checks device margins, picks the device and
caches per-training device data on :class:`~gbdt_pwiser.objectives._prepare.PreparedData`;
the kernels layer validates nothing.

The results are the CPU kernels' numbers computed in float64 on the GPU,
returned as numba device arrays (``__cuda_array_interface__``), which XGBoost
3.x accepts as gradients without a host copy.

XGBoost (checked on 3.2, ``Booster.boost``): each round XGBoost calls
``predict(dtrain, output_margin=True, training=True)``, which copies the
margins to the host (numpy float32, 4 bytes/row), and hands them to the
objective; this module sends them back to the GPU into a reused staging
buffer (4 bytes/row). So a round costs 2 copies of the margins (one inside
XGBoost, one here) and none of the gradients; 3.2 offers no way to get the
margins on the device inside a custom objective. Device margins (anything
with ``__cuda_array_interface__``, e.g. CuPy) are used in place.
LightGBM calls a custom objective with host arrays and expects host arrays
back, so use ``device="cpu"`` there.

The per-training arrays (labels, weights, group layout) go to the device once
per prepared data and are cached on it (attribute ``_device_cache``), with the
pair terms' scratch and two buffers of p and σ' of every row (16 bytes/row,
written by the BCE kernel and read by the pair kernels, as on the CPU); the
objective's adapters also reuse the output buffers from round to round.

Configuration: ``BLOCK_SIZE`` (env ``GBDT_PWISER_CUDA_BLOCK``, default 256
threads per block) and ``SERIAL_MAX_ROWS`` (env ``GBDT_PWISER_CUDA_SERIAL_MAX``,
default 512: larger active groups take the row-parallel kernels).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

from .._defaults import HESSIAN_FLOOR
from .._validation import check_margin
from ..kernels import cpu as K
from ..kernels import cuda as kc
from ..kernels.groups import Groups, Pairs, Rows, Scratch

__all__ = [
    "BLOCK_SIZE",
    "SERIAL_MAX_ROWS",
    "block_size",
    "serial_max_rows",
    "pwiser_grad_hess_cuda",
    "esmm_grad_hess_cuda",
    "draw_indices_cuda",
    "COPIES",
]

#: Threads per block; ``None`` reads ``GBDT_PWISER_CUDA_BLOCK`` (default 256).
BLOCK_SIZE: int | None = None
#: Largest active group (rows) handled by one thread; ``None`` reads
#: ``GBDT_PWISER_CUDA_SERIAL_MAX`` (default 512).
SERIAL_MAX_ROWS: int | None = None

_DEFAULT_BLOCK = 256
_DEFAULT_SERIAL_MAX = 512

#: Host<->device copies made by this module (counts and bytes), for the benchmarks and tests:
#: ``margin_h2d`` (host margins sent per call), ``grad_d2h`` (always 0: gradients stay on the device).
COPIES = {"margin_h2d": 0, "margin_h2d_bytes": 0, "grad_d2h": 0}


# --------------------------------------------------------------------------- configuration


def _positive_int(value: Any, name: str) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive int, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return v


def block_size() -> int:
    """Threads per CUDA block: ``BLOCK_SIZE``, else ``$GBDT_PWISER_CUDA_BLOCK``, else 256.

    Returns
    -------
    int
        A positive block size (at most 1024, the CUDA limit).
    """
    if BLOCK_SIZE is not None:
        v = _positive_int(BLOCK_SIZE, "BLOCK_SIZE")
    else:
        v = _positive_int(os.environ.get("GBDT_PWISER_CUDA_BLOCK", _DEFAULT_BLOCK), "GBDT_PWISER_CUDA_BLOCK")
    if v > 1024:
        raise ValueError(f"CUDA block size must be at most 1024, got {v}")
    return v


def serial_max_rows() -> int:
    """Largest active group (in rows) that one GPU thread handles alone.

    ``SERIAL_MAX_ROWS``, else ``$GBDT_PWISER_CUDA_SERIAL_MAX``, else 512.
    Larger groups use the row-parallel kernels.
    """
    if SERIAL_MAX_ROWS is not None:
        return _positive_int(SERIAL_MAX_ROWS, "SERIAL_MAX_ROWS")
    return _positive_int(
        os.environ.get("GBDT_PWISER_CUDA_SERIAL_MAX", _DEFAULT_SERIAL_MAX), "GBDT_PWISER_CUDA_SERIAL_MAX"
    )


def _ordinal(device: str) -> int | None:
    return int(device.split(":", 1)[1]) if ":" in device else None


@contextlib.contextmanager
def _on_device(cuda: Any, ordinal: int | None) -> Iterator[None]:
    if ordinal is None:
        yield
        return
    if ordinal >= len(cuda.gpus):
        raise RuntimeError(f"device='cuda:{ordinal}' but only {len(cuda.gpus)} CUDA device(s) are visible")
    with cuda.gpus[ordinal]:
        yield


@contextlib.contextmanager
def _quiet(cuda: Any) -> Iterator[None]:
    """Silence numba's low-occupancy warnings for small launches (and, in the
    simulator, numpy's warnings about the intended uint64 wrap-around of SplitMix64)."""
    with warnings.catch_warnings():
        try:
            from numba.core.errors import NumbaPerformanceWarning

            warnings.simplefilter("ignore", NumbaPerformanceWarning)
        except ImportError:  # pragma: no cover
            pass
        if kc.is_simulator(cuda):
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        yield


# --------------------------------------------------------------------------- device data


def _device_cache(obj: Any) -> dict:
    cache = getattr(obj, "_device_cache", None)
    if cache is None:
        cache = {}
        object.__setattr__(obj, "_device_cache", cache)
    return cache


def _upload_rows(cuda: Any, data: Any) -> dict:
    """Send the labels and weights to the device (once per prepared data): the entire-space loss."""
    return {
        "y": cuda.to_device(np.ascontiguousarray(data.y)) if data.n else cuda.device_array(1, dtype=np.int8),
        "w": cuda.to_device(np.ascontiguousarray(data.w, dtype=np.float64))
        if data.has_w and data.n
        else cuda.device_array(1, dtype=np.float64),
        "a": None,
        "z": {},
        "out": None,
    }


def _upload(cuda: Any, data: Any) -> dict:
    """Send the fixed per-training arrays of PWiseR to the device (once per PreparedData)."""
    P = int(data.pptr[-1]) if data.pptr.size else 0
    A = int(data.aptr.size - 1)
    return {
        **_upload_rows(cuda, data),
        "perm": cuda.to_device(np.ascontiguousarray(data.perm, dtype=np.int64))
        if data.perm.size
        else cuda.device_array(1, dtype=np.int64),
        "aptr": cuda.to_device(np.ascontiguousarray(data.aptr, dtype=np.int64)),
        "anP": cuda.to_device(np.ascontiguousarray(data.anP, dtype=np.int64))
        if A
        else cuda.device_array(1, dtype=np.int64),
        "anC": cuda.to_device(np.ascontiguousarray(data.anC, dtype=np.int64))
        if A
        else cuda.device_array(1, dtype=np.int64),
        "pptr": cuda.to_device(np.ascontiguousarray(data.pptr, dtype=np.int64)),
        "scratch": None,  # allocated on the first round that needs pairs
        "P": P,
        "A": A,
        "layouts": {},
    }


@contextlib.contextmanager
def _session(obj: Any, data: Any, reuse: bool | None, upload: Any) -> Iterator[tuple[Any, dict, bool]]:
    """``(numba.cuda, the data's arrays on obj's device, reuse)`` for one call; the arrays are
    sent by ``upload`` on the first call for this data and device, kept on the data after."""
    cuda = kc.get_cuda()
    if reuse is None:
        reuse = getattr(obj, "_prepared", None) is data
    ordinal = _ordinal(obj.device)
    with _on_device(cuda, ordinal), _quiet(cuda):
        cache = _device_cache(data)
        dev = cache.get(ordinal)
        if dev is None:
            dev = cache[ordinal] = upload(cuda, data)
        yield cuda, dev, bool(reuse)
        cuda.synchronize()


def _scratch(cuda: Any, dev: dict) -> Scratch:
    if dev["scratch"] is None:
        P1 = max(dev["P"], 1)
        B = dev["P"] + dev["A"]
        dev["scratch"] = Scratch(
            cuda.device_array(P1, dtype=np.float64),  # sp
            cuda.device_array(P1, dtype=np.int64),  # si
            cuda.device_array(P1, dtype=np.float64),  # tp (merge-sort ping-pong)
            cuda.device_array(P1, dtype=np.int64),  # ti
            cuda.device_array(B, dtype=np.float64),  # pa
            cuda.device_array(B, dtype=np.float64),  # pb
            cuda.device_array(2 * B, dtype=np.float64),  # bw:  term 0's buckets, then term 1's
            cuda.device_array(2 * B, dtype=np.float64),  # bwp
        )
    return dev["scratch"]


def _row_buffers(cuda: Any, dev: dict, n: int) -> tuple[Any, Any]:
    """Device buffers for p and σ' of every row (written by the BCE kernel, read by the pair kernels)."""
    if dev.get("pp") is None:
        dev["pp"] = (cuda.device_array(n, dtype=np.float64), cuda.device_array(n, dtype=np.float64))
    return dev["pp"]


def _layout(cuda: Any, data: Any, dev: dict, smax: int) -> SimpleNamespace:
    """Which active groups are 'large' (> smax rows) and their rows' positions in perm."""
    lay = dev["layouts"].get(smax)
    if lay is not None:
        return lay
    sizes = np.diff(data.aptr)
    big = (sizes > smax).astype(np.uint8)
    bidx = np.flatnonzero(big)
    if bidx.size:
        lens = sizes[bidx]
        lgrp = np.repeat(bidx.astype(np.int64), lens)
        first = np.repeat(np.cumsum(lens) - lens, lens)
        lpos = np.repeat(data.aptr[bidx], lens) + (np.arange(lgrp.size, dtype=np.int64) - first)
        max_p = int(data.anP[bidx].max())
    else:
        lgrp = lpos = np.zeros(0, dtype=np.int64)
        max_p = 0
    lay = SimpleNamespace(
        big=cuda.to_device(big) if big.size else cuda.device_array(1, dtype=np.uint8),
        n_big=int(bidx.size),
        lpos=cuda.to_device(lpos) if lpos.size else None,
        lgrp=cuda.to_device(lgrp) if lgrp.size else None,
        n_pos=int(lpos.size),
        max_p=max_p,
    )
    dev["layouts"][smax] = lay
    return lay


def _margin(cuda: Any, z: Any, dev: dict, n: int) -> Any:
    """Margins on the device: device arrays in place, host arrays via a reused staging buffer."""
    if hasattr(z, "__cuda_array_interface__") or hasattr(z, "copy_to_host"):
        zd = z if hasattr(z, "copy_to_host") else cuda.as_cuda_array(z)
        if zd.ndim == 2 and zd.shape[1] == 1:
            zd = zd.reshape(zd.shape[0])
        if zd.ndim != 1:
            raise ValueError(f"margin must be 1-D raw scores of shape (n,), got shape {zd.shape}")
        if np.dtype(zd.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"device margin must be float32 or float64, got {zd.dtype}")
        if not zd.is_c_contiguous():  # the kernels are compiled for contiguous margins
            buf = cuda.device_array(zd.shape[0], dtype=zd.dtype)
            buf[:] = zd
            zd = buf
    else:
        zh = np.asarray(z)
        if zh.ndim == 2 and zh.shape[1] == 1:
            zh = zh.reshape(-1)
        zh = check_margin(zh)
        buf = dev["z"].get(zh.dtype.str)
        if buf is None or buf.shape[0] != zh.shape[0]:
            buf = cuda.device_array(zh.shape[0], dtype=zh.dtype)
            dev["z"][zh.dtype.str] = buf
        buf.copy_to_device(zh)
        COPIES["margin_h2d"] += 1
        COPIES["margin_h2d_bytes"] += zh.nbytes
        zd = buf
    if zd.shape[0] != n:
        raise ValueError(f"margin has {zd.shape[0]} rows but the training data has {n}")
    return zd


def _outputs(cuda: Any, dev: dict, n: int, reuse: bool) -> tuple[Any, Any]:
    if not reuse:
        return cuda.device_array(n, dtype=np.float64), cuda.device_array(n, dtype=np.float64)
    if dev["out"] is None or dev["out"][0].shape[0] != n:
        dev["out"] = (cuda.device_array(n, dtype=np.float64), cuda.device_array(n, dtype=np.float64))
    return dev["out"]


def _grid(n: int, block: int) -> int:
    return max(1, (n + block - 1) // block)


# --------------------------------------------------------------------------- PWiseR


def pwiser_grad_hess_cuda(obj: Any, z: Any, data: Any, iteration: int, reuse: bool | None = None) -> tuple[Any, Any]:
    """Gradient and Hessian of BCE + λ·PWiseR on the GPU.

    Parameters
    ----------
    obj : PWiseRObjective
        Supplies λ, the margins, the pair loss, ``pairs``, ``random_state`` and
        ``device`` (``"cuda"`` or ``"cuda:<ordinal>"``).
    z : ndarray or device array of shape (n,)
        Margins: a host numpy array (sent to the device) or anything with
        ``__cuda_array_interface__`` (used in place), float32 or float64.
    data : PreparedData
        From :func:`gbdt_pwiser.prepare_data`; its arrays are sent to the
        device once and cached on it.
    iteration : int
        Boosting round (selects the pairs drawn in sampled mode).
    reuse : bool, optional
        Write into output buffers cached on ``data`` (overwritten next call).
        Default: True when called by the objective's XGBoost/LightGBM adapter
        (``data`` is the adapter's prepared data), else False.

    Returns
    -------
    grad, hess : numba device arrays of shape (n,), float64
        The CPU's values (float64, same accumulation order except in groups
        larger than :func:`serial_max_rows`); ``hess`` floored at 1e-16.

    Raises
    ------
    RuntimeError
        numba-cuda is not installed or no CUDA driver/device is usable.
    """
    lam, m1, m2, loss_kind, k, seed = obj._check_params()
    iteration = int(iteration)
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    with _session(obj, data, reuse, _upload) as (cuda, dev, reuse):
        zd = _margin(cuda, z, dev, data.n)
        g, h = _outputs(cuda, dev, data.n, reuse)
        if data.n:
            _pwiser_launch(cuda, data, dev, zd, g, h, lam, m1, m2, loss_kind, k, seed, iteration)
    return g, h


def _pwiser_launch(
    cuda: Any,
    data: Any,
    dev: dict,
    z: Any,
    g: Any,
    h: Any,
    lam: float,
    m1: float,
    m2: float,
    loss_kind: int,
    k: int,
    seed: int,
    iteration: int,
) -> None:
    """Driver: BCE for every row, then the pair terms of small and large active groups."""
    kern = kc.kernels()
    tpb = block_size()
    n = data.n
    w, has_w = dev["w"], bool(data.has_w)
    A = dev["A"]
    if lam == 0.0 or A == 0:
        kern.bce[_grid(n, tpb), tpb](z, dev["y"], w, has_w, HESSIAN_FLOOR, g, h)
        return
    R = Rows(z, dev["y"], w, has_w, *_row_buffers(cuda, dev, n), 0)
    kern.bce_pd[_grid(n, tpb), tpb](R, HESSIAN_FLOOR, g, h)
    sc_c, sc_n = data.scales(lam)
    P = Pairs(float(sc_c), float(sc_n), float(m1), float(m2), int(loss_kind), int(k), K.round_key(seed, iteration))
    lay = _layout(cuda, data, dev, serial_max_rows())
    S = _scratch(cuda, dev)
    G = Groups(dev["perm"], dev["aptr"], dev["anP"], dev["anC"], dev["pptr"])
    if lay.n_big < A:
        kern.group[_grid(A, tpb), tpb](R, G, P, S, lay.big, g, h)
    if lay.n_big == 0:
        return
    lpos, lgrp, gp = lay.lpos, lay.lgrp, _grid(lay.n_pos, tpb)
    if k > 0:
        kern.big_sampled[gp, tpb](R, G, P, lpos, lgrp, g, h)
    elif loss_kind != K.LOSS_SQUARED_HINGE:
        kern.big_all_pairs[gp, tpb](R, G, P, lpos, lgrp, g, h)
    else:
        kern.big_fill[gp, tpb](R, G, S, lpos, lgrp)
        src_p, src_i, dst_p, dst_i = S.sp, S.si, S.tp, S.ti
        width = 1
        while width < lay.max_p:
            kern.big_merge[gp, tpb](G, lpos, lgrp, width, src_p, src_i, dst_p, dst_i)
            src_p, src_i, dst_p, dst_i = dst_p, dst_i, src_p, src_i
            width *= 2
        S = S._replace(sp=src_p, si=src_i, tp=dst_p, ti=dst_i)  # the sorted conversions
        ga = _grid(A, tpb)
        kern.big_prefix[ga, tpb](R, G, S, lay.big)
        kern.big_sq_partner[gp, tpb](R, G, P, S, lpos, lgrp, g, h)
        kern.big_sq_suffix[ga, tpb](R, G, P, S, lay.big, g, h)


def draw_indices_cuda(key: np.uint64, counters: np.ndarray, n: int) -> np.ndarray:
    """The device's counter-based draws (for tests): ``draw_index(key, c, n)`` per counter."""
    cuda = kc.get_cuda()
    c = np.ascontiguousarray(counters, dtype=np.int64)
    out = cuda.device_array(max(c.size, 1), dtype=np.int64)
    if c.size:
        with _quiet(cuda):
            tpb = block_size()
            kc.kernels().draw[_grid(c.size, tpb), tpb](np.uint64(key), cuda.to_device(c), int(n), out)
    return out.copy_to_host()[: c.size]


# --------------------------------------------------------------------------- entire-space CVR


def esmm_grad_hess_cuda(obj: Any, z: Any, data: Any, a: np.ndarray, reuse: bool | None = None) -> tuple[Any, Any]:
    """Gradient and Fisher Hessian of the entire-space CVR loss on the GPU (docs/mathematics.md §5).

    Parameters
    ----------
    obj : EntireSpaceCVRObjective
        Supplies ``device``.
    z : ndarray or device array of shape (n,)
        CVR margins ``u`` (host or ``__cuda_array_interface__``).
    data : object
        With ``n``, ``y`` (funnel labels), ``w`` and ``has_w``; its arrays are
        cached on the device.
    a : ndarray of shape (n,)
        pCTR per row (host, float64); cached on the device while the same
        array object is passed.
    reuse : bool, optional
        As in :func:`pwiser_grad_hess_cuda`.

    Returns
    -------
    grad, hess : numba device arrays of shape (n,), float64
    """
    with _session(obj, data, reuse, _upload_rows) as (cuda, dev, reuse):
        if dev["a"] is None or dev["a"][0] is not a:
            ah = np.ascontiguousarray(a, dtype=np.float64)
            if ah.shape != (data.n,):
                raise ValueError(f"ctr_prob has shape {ah.shape} but there are {data.n} rows")
            dev["a"] = (a, cuda.to_device(ah) if data.n else cuda.device_array(1, dtype=np.float64))
        zd = _margin(cuda, z, dev, data.n)
        g, h = _outputs(cuda, dev, data.n, reuse)
        if data.n:
            tpb = block_size()
            kc.kernels().esmm[_grid(data.n, tpb), tpb](
                zd, dev["y"], dev["a"][1], dev["w"], bool(data.has_w), HESSIAN_FLOOR, g, h
            )
    return g, h
