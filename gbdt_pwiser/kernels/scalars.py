"""Scalar building blocks of the kernels, registered for the CPU and the CUDA target.

The exp/sigmoid helpers, SplitMix64 draws, per-row BCE and entire-space terms, and the two
helpers whose body differs by target (:func:`pow2_scale`, :func:`add_at`), and the one place
where a pair loss is written (:func:`pair_terms`, :func:`pair_value`); the per-group mathematics
built from them is in :mod:`gbdt_pwiser.kernels.groups`.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

LOSS_SQUARED_HINGE = 0
LOSS_LOGISTIC = 1

_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_ONE = np.uint64(1)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
#: 1.5 · 2**52: ``(t + ROUND_MAGIC) - ROUND_MAGIC`` rounds t (|t| < 2**51) to the nearest integer,
#: and the low bits of ``t + ROUND_MAGIC`` hold that integer (two's complement)
ROUND_MAGIC = 6755399441055744.0
# 1/k! of exp's Taylor polynomial
_E2, _E3, _E4, _E5, _E6, _E7 = 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040
_E8, _E9, _E10, _E11 = 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800
_E12, _E13 = 1.0 / 479001600, 1.0 / 6227020800

#: Conversions sorted by insertion sort up to this many, by a stable merge sort above.
INSERTION_SORT_MAX = 32
#: A partner's active conversions counted one by one up to this many conversions, by binary
#: search above (the same count: the predicate holds on a prefix of the sorted conversions).
COUNT_LINEAR_MAX = 16


def _register(fn, cpu_forceinline):
    def body(*args):
        return fn

    # Each function is typed and compiled once on the CPU; ``forceinline`` asks LLVM, not Numba's IR
    # inliner, to inline it. Numba-IR inlining (``inline="always"``) of the nested scalars re-typed
    # them at every call site: bce_pass took 8.3 s to compile instead of 1.0 s, the same machine code.
    # ``_nrt=False``: none of them allocates or returns an array, and with Numba's reference counting
    # each call, inlined or not, counted references to every array argument (two atomic calls per
    # array per call, which LLVM cannot remove: 9-22 % of the exact squared hinge's time, perf).
    # ``_nrt`` is a real jit option that Numba's stubs do not list
    overload(
        fn,
        target="cpu",
        jit_options={"forceinline": cpu_forceinline, "_nrt": False},  # type: ignore[typeddict-unknown-key]
        strict=False,
    )(body)
    overload(fn, target="cuda", strict=False)(body)
    return fn


def _outlined(fn):
    """Register a group-level ``fn`` for both targets, compiled as its own function on each (called
    from the drivers, as the CPU group kernels always were: inlining every group function into the
    drivers in Numba IR made the first compilation ~20x slower), inlined by NVVM on CUDA
    (numba-cuda's IR inliner mistypes them; ``tests/gpu/test_gpu_compile.py``)."""
    return _register(fn, False)


def _inlined(fn):
    """A group-level ``fn`` registered like :func:`_outlined` but inlined by LLVM on the CPU: for the
    functions called per group or per term (a call costs more than their work there)."""
    return _register(fn, True)


def _scalar(fn):
    """Register a scalar ``fn`` for both targets, always inlined by LLVM on the CPU (keeps the row
    loops vectorisable), left to NVVM's inliner on CUDA."""
    return _register(fn, True)


# --------------------------------------------------------------------------- per-target helpers


@intrinsic
def _bits_to_float64(typingctx, bits):
    """Reinterpret an int64 bit pattern as a float64 (CPU: free, keeps loops vectorisable)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _float64_to_bits(typingctx, x):
    """The int64 bit pattern of a float64 (CPU: free, keeps loops vectorisable)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


def pow2_scale(q, n):
    """``q * 2**n`` for an integral float ``n`` >= -1021 (a normal result): exact."""
    return math.ldexp(q, int(n))


@overload(pow2_scale, target="cpu", jit_options={"forceinline": True})
def _pow2_scale_cpu(q, n):
    def impl(q, n):
        # the exponent bits 2**n from the low bits of n + ROUND_MAGIC (an exact sum for integral n;
        # the magic's own bits are shifted out): no float-to-integer conversion, which AVX2 cannot
        # vectorise. The @intrinsics get the typing context from Numba; the stubs count it as an argument
        return q * _bits_to_float64((_float64_to_bits(n + ROUND_MAGIC) + 1023) << 52)  # type: ignore[call-arg]

    return impl


@overload(pow2_scale, target="cuda")
def _pow2_scale_cuda(q, n):
    def impl(q, n):  # libdevice ldexp(double, int32); math.floor gives a float64 on CUDA
        return math.ldexp(q, np.int32(n))

    return impl


_SIM_LOCK = threading.Lock()


def add_at(arr, j, v, atomic):
    """``arr[j] += v``; atomic on CUDA when ``atomic`` (threads share ``j``)."""
    if atomic:  # the CUDA simulator runs threads as Python threads
        with _SIM_LOCK:
            arr[j] += v
    else:
        arr[j] += v


@overload(add_at, target="cpu", jit_options={"forceinline": True})
def _add_at_cpu(arr, j, v, atomic):
    def impl(arr, j, v, atomic):  # one thread per group: never contended
        arr[j] += v

    return impl


@overload(add_at, target="cuda")
def _add_at_cuda(arr, j, v, atomic):
    def impl(arr, j, v, atomic):
        if atomic:
            # numba.cuda is loaded by the CUDA target that compiles this (not at import: no CUDA on CPU runs)
            numba.cuda.atomic.add(arr, j, v)  # type: ignore[attr-defined]
        else:
            arr[j] += v

    return impl


# --------------------------------------------------------------------------- scalars


@_scalar
def exp_nonpos(x):
    """exp(x) for x <= 0 without a libm call.

    Cody–Waite reduction ``x = n ln2 + r`` (|r| <= ln2/2, n rounded to nearest by adding and
    subtracting ``ROUND_MAGIC``), the degree-13 Taylor polynomial of exp(r) evaluated by Estrin's
    scheme, and :func:`pow2_scale`; relative error below 5e-16 (``tests/kernels``). Inputs below
    -708 are clamped (exp(-708) ~ 3e-308 instead of 0, which only ever ends up under the Hessian
    floor). Nothing here converts a float to an integer: on AVX2 such a conversion does not
    vectorise, and it and Horner's chain of 26 dependent operations took half the BCE rows' time.
    """
    x = max(x, -708.0)
    n = (x * _LOG2E + ROUND_MAGIC) - ROUND_MAGIC
    r = (x - n * _LN2_HI) - n * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    lo = ((1.0 + r) + r2 * (_E2 + _E3 * r)) + r4 * ((_E4 + _E5 * r) + r2 * (_E6 + _E7 * r))
    hi = ((_E8 + _E9 * r) + r2 * (_E10 + _E11 * r)) + r4 * (_E12 + _E13 * r)
    return pow2_scale(lo + (r4 * r4) * hi, n)


@_scalar
def sigmoid_and_deriv(z):
    """Return (σ(z), σ'(z)) for any finite z, branch-free, no overflow."""
    e = exp_nonpos(-abs(z))
    inv = 1.0 / (1.0 + e)
    p = inv if z >= 0.0 else e * inv
    return p, e * inv * inv


@_scalar
def non_finite(x):
    """1 if x is NaN or ±inf, else 0 (branch-free: the CPU row kernels count a block's margins in
    a vector loop before computing them, :func:`gbdt_pwiser.kernels.cpu.bce_rows`)."""
    return np.int64(not (abs(x) < math.inf))


@_scalar
def log1pexp(x):
    """log(1 + exp(x)) without overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@_scalar
def mix64(x):
    """SplitMix64 finaliser (uint64 -> uint64)."""
    x = (x ^ (x >> _U30)) * _M1
    x = (x ^ (x >> _U27)) * _M2
    return x ^ (x >> _U31)


@_scalar
def draw_index(key, counter, n):
    """Counter-based uniform integer in [0, n): the same on every thread and device."""
    u = mix64(key + (np.uint64(counter) + _ONE) * _GOLDEN)
    return np.int64(((u >> _U32) * np.uint64(n)) >> _U32)


@_scalar
def weight(w, has_w, r):
    return w[r] if has_w else 1.0


@_scalar
def bce_from_pd(p, d, yi, wi, floor):
    """BCE gradient w (p - c) and floored Hessian max(w σ', floor) of a row with p and σ' = d (c = y >= 1)."""
    c = 1.0 if yi >= 1 else 0.0
    hh = wi * d
    return wi * (p - c), (hh if hh > floor else floor)


@_scalar
def bce_row_pd(zi, yi, wi, floor):
    """BCE gradient w (p - c), floored Hessian max(w σ', floor), p and σ' of one row (c = y >= 1)."""
    p, d = sigmoid_and_deriv(zi)
    gi, hi = bce_from_pd(p, d, yi, wi, floor)
    return gi, hi, p, d


@_scalar
def bce_row(zi, yi, wi, floor):
    """BCE gradient w (p - c) and floored Hessian max(w σ', floor) of one row (c = y >= 1)."""
    gi, hi, _, _ = bce_row_pd(zi, yi, wi, floor)
    return gi, hi


@_scalar
def esmm_terms(u, a):
    """q = σ(u), σ'(u), 1 - q and 1 - a q computed without cancellation."""
    q, dq = sigmoid_and_deriv(u)
    one_m_q = sigmoid_and_deriv(-u)[0]
    one_m_aq = (1.0 - a) + a * one_m_q
    return q, dq, one_m_q, one_m_aq


@_scalar
def esmm_row(ui, vi, ai, wi, floor):
    """Gradient and Fisher Hessian of BCE(a·σ(u), v) w.r.t. the CVR margin u (docs/mathematics.md §5).

    grad = -v (1 - q) + (1 - v) a q (1 - q) / (1 - a q);
    hess = a q (1 - q)² / (1 - a q), floored.
    """
    _q, dq, one_m_q, one_m_aq = esmm_terms(ui, ai)
    if vi == 2:
        gi = -one_m_q
    else:
        gi = ai * dq / one_m_aq
    hh = wi * ai * dq * one_m_q / one_m_aq
    return wi * gi, (hh if hh > floor else floor)


@_scalar
def sq_hinge_partner_terms(pj, dj, wj, m, sc, A, B):
    """(gradient, Hessian) of an exact squared-hinge partner with active-prefix sums A = Σ w_i, B = Σ w_i p_i."""
    f = sc * 2.0 * wj * dj
    return f * ((pj + m) * A - B), f * dj * A


@_scalar
def sq_hinge_conversion_terms(wi, di, pi, m, sc, SW, SWP):
    """(gradient, Hessian) of an exact squared-hinge conversion whose active partners have
    Σ w_j = SW and Σ w_j p_j = SWP."""
    f = sc * 2.0 * wi * di
    return -(f * (SWP - (pi - m) * SW)), f * di * SW


@_scalar
def sq_hinge_pair(pi, di, pj, dj, m, pw):
    """One sampled squared-hinge pair of weight pw: (active, g_i, h_i, g_j, h_j) to add."""
    dlt = (pj - pi) + m
    return dlt > 0.0, -(pw * 2.0 * dlt * di), pw * 2.0 * di * di, pw * 2.0 * dlt * dj, pw * 2.0 * dj * dj


@_scalar
def pair_terms(loss_kind, zi, pi, di, R, j, m, pw):
    """The pair loss's derivatives (docs/mathematics.md §3): one pair of conversion i and partner j,
    of weight pw (scale · w_i · w_j, or the sampled weight).

    ``zi``, ``pi``, ``di``: the conversion's margin, p and σ'; the partner's are read from the rows
    ``R`` (:class:`~gbdt_pwiser.kernels.groups.Rows`: margins ``R.z``, p and σ' at ``j - R.ro`` of
    ``R.pp``/``R.pd``), in the branch of the loss that needs them. Returns ``(active, g_i, h_i,
    g_j, h_j)`` to add. A new pair loss is a branch here and in :func:`pair_value`; the sampled
    mode and the exact mode of losses without a closed form (O(|P|·|partners|) per group) then
    run it on the CPU and on CUDA.
    """
    if loss_kind == LOSS_SQUARED_HINGE:
        return sq_hinge_pair(pi, di, R.pp[j - R.ro], R.pd[j - R.ro], m, pw)
    sv, dv = sigmoid_and_deriv(np.float64(R.z[j]) - zi + m)  # logistic
    return True, -(pw * sv), pw * dv, pw * sv, pw * dv


@_scalar
def pair_value(loss_kind, zi, zj, m):
    """The pair loss φ(i, j; m) of conversion margin ``zi`` and partner margin ``zj`` (§2): the loss
    values of the exact mode for losses without a closed form (see :func:`pair_terms`)."""
    if loss_kind == LOSS_SQUARED_HINGE:
        d = (sigmoid_and_deriv(zj)[0] - sigmoid_and_deriv(zi)[0]) + m
        return d * d if d > 0.0 else 0.0
    return log1pexp(zj - zi + m)  # logistic


@_scalar
def partner_term(P, t, s, nP, nC):
    """(margin, scale) of the partner at position t: click-only (term 0) or non-click (term 1);
    ``P``: the round's :class:`~gbdt_pwiser.kernels.groups.Pairs`."""
    if t < s + nP + nC:
        return P.m1, P.sc_c
    return P.m2, P.sc_n


@_scalar
def term_span(P, term, s, nP, nC, e):
    """Partner positions [js, je), margin and scale of a group's term 0 (conversion vs click-only)
    or term 1 (conversion vs non-click); the group's rows are [P | C | N] at s:e."""
    if term == 0:
        return s + nP, s + nP + nC, P.m1, P.sc_c
    return s + nP + nC, e, P.m2, P.sc_n


@_scalar
def count_active(sp, po, nP, pj, m):
    """Number of sorted conversions i with (p_j - p_i) + m > 0 (a prefix)."""
    if nP <= COUNT_LINEAR_MAX:  # few conversions (most groups): count them, no branch to mispredict
        r = 0
        for q in range(nP):
            r += (pj - sp[po + q]) + m > 0.0
        return r
    lo = 0
    hi = nP
    while lo < hi:
        mid = (lo + hi) >> 1
        if (pj - sp[po + mid]) + m > 0.0:
            lo = mid + 1
        else:
            hi = mid
    return lo
