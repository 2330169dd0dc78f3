"""BCE + λ·PWiseR as a differentiable PyTorch loss (docs/mathematics.md §2).

This module imports :mod:`torch` at import time; it is meant for users who
installed the ``[torch]`` extra. ``import gbdt_pwiser`` never imports it.

The loss is the one the gradient-boosting objective
(:class:`gbdt_pwiser.PWiseRObjective`) optimises, written with autograd so that
neural multi-task models (see ``gbdt_pwiser.neural.models``) can be trained with
exactly the same definition::

    L      = Σ_i w_i·BCE_i + λ·W·PWiseR                   (reduction="sum")
    L / W  = weighted-mean BCE + λ·PWiseR                 (reduction="mean")

    PWiseR = weighted mean over pairs (i ∈ P, j ∈ C, same group) of φ(i, j; m1)
           + weighted mean over pairs (i ∈ P, j ∈ N, same group) of φ(i, j; m2)

with ``P`` conversions (funnel label 2), ``C`` click-only rows (label 1),
``N`` non-clicks (label 0), pair weight ``w_i·w_j`` and ``W = Σ_i w_i``. The
weighted mean of a term is taken over *all* its eligible pairs of the batch
(normaliser ``Σ_g W_P,g·W_T,g``); a term without any pair contributes 0.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
import torch.nn.functional as F

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._labels import as_funnel
from .._validation import PAIR_LOSSES, check_labels, check_lam_margins, check_pair_loss, check_weight, group_codes

__all__ = ["pwiser_loss", "PWiseRLoss"]

PairLossName = Literal["squared_hinge", "logistic"]
InputsName = Literal["logits", "probs"]
ReductionName = Literal["mean", "sum"]

_INPUTS: tuple[InputsName, ...] = ("logits", "probs")
_REDUCTIONS: tuple[ReductionName, ...] = ("mean", "sum")
_Choice = TypeVar("_Choice", bound=str)


# --------------------------------------------------------------------------- validation


def _check_choice(name: str, value: Any, choices: tuple[_Choice, ...]) -> _Choice:
    """The string options of the loss and the trainer (``inputs``, ``reduction``, ``loss``, ``cvr_space``)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _to_numpy(values: Any) -> np.ndarray:
    """A tensor (any device) or array-like as a NumPy array; the checks of ``_validation`` take it from there."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)


def _labels(y: Any, n: int) -> np.ndarray:
    """Funnel labels (n,), an (n, 1) column or ``[click, conversion]`` (n, 2), tensors too, as int8."""
    arr = _to_numpy(y)
    labels = as_funnel(arr) if arr.ndim == 2 else check_labels(arr, name="y")
    if labels.shape[0] != n:
        raise ValueError(f"y has {labels.shape[0]} labels but the input has {n} rows")
    return labels


def _weights(weight: Any, n: int, like: torch.Tensor) -> torch.Tensor:
    """Row weights as a tensor like ``like``; values checked by ``_validation.check_weight``.

    A weight tensor is kept (cast to the input's dtype and device), so a
    gradient with respect to it still flows.
    """
    if weight is None:
        return torch.ones(n, dtype=like.dtype, device=like.device)
    arr = _to_numpy(weight)
    if arr.dtype.kind == "b":
        raise TypeError(f"weight must be real-valued numbers, got dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
        weight = weight[:, 0] if isinstance(weight, torch.Tensor) else arr
    checked = check_weight(arr, n, name="weight")
    if isinstance(weight, torch.Tensor):
        return weight.to(dtype=like.dtype, device=like.device)
    return torch.as_tensor(checked, dtype=like.dtype, device=like.device)


def _check_input(x: Any, inputs: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        arr = np.asarray(x)
        if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
            raise TypeError(f"input must be a floating tensor or real array, got dtype {arr.dtype}")
        x = torch.as_tensor(arr.astype(np.float64))
    if not x.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"input must have shape (n,) or (n, 1), got {tuple(x.shape)}")
    xd = x.detach()
    if bool(torch.isnan(xd).any()):
        raise ValueError("input contains NaN")
    if inputs == "logits":
        if bool(torch.isinf(xd).any()):
            raise ValueError("logits contain infinite values")
    elif bool(((xd < 0) | (xd > 1)).any()):
        raise ValueError("inputs='probs' requires values in [0, 1]")
    return x


# --------------------------------------------------------------------------- pairs


def _pair_indices(codes: np.ndarray, is_i: np.ndarray, is_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j) with ``is_i[i]``, ``is_j[j]`` and ``codes[i] == codes[j]``.

    Vectorised block enumeration: partners are sorted by group, and each ``i``
    gets the contiguous run of its group's partners. Memory is O(#pairs).
    """
    pi = np.flatnonzero(is_i)
    pj = np.flatnonzero(is_j)
    empty = np.empty(0, dtype=np.int64)
    if pi.size == 0 or pj.size == 0:
        return empty, empty
    n_groups = int(codes.max()) + 1
    gj = codes[pj]
    order = np.argsort(gj, kind="stable")
    pj_sorted = pj[order]
    cnt_j = np.bincount(gj, minlength=n_groups)
    start_j = np.cumsum(cnt_j) - cnt_j
    gi = codes[pi]
    k = cnt_j[gi]
    total = int(k.sum())
    if total == 0:
        return empty, empty
    ii = np.repeat(pi, k)
    run_start = np.repeat(np.cumsum(k) - k, k)
    within = np.arange(total, dtype=np.int64) - run_start
    jj = pj_sorted[np.repeat(start_j[gi], k) + within]
    return ii.astype(np.int64, copy=False), jj.astype(np.int64, copy=False)


def _prob_eps(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)


def _pwiser_sum(
    x: torch.Tensor,
    y: np.ndarray,
    codes: np.ndarray,
    w: torch.Tensor,
    *,
    lam: float,
    margin_click_only: float,
    margin_no_click: float,
    pair_loss: str,
    inputs: str,
) -> torch.Tensor:
    """Sum form ``Σ w_i BCE_i + λ·W·PWiseR`` on validated inputs (no checks)."""
    click = torch.as_tensor(y >= 1, dtype=x.dtype, device=x.device)
    if inputs == "logits":
        bce = (w * F.binary_cross_entropy_with_logits(x, click, reduction="none")).sum()
    else:
        eps = _prob_eps(x.dtype)
        pc = x.clamp(eps, 1.0 - eps)
        bce = -(w * (click * torch.log(pc) + (1.0 - click) * torch.log1p(-pc))).sum()
    if lam == 0.0 or not np.any(y == 2):
        return bce

    if pair_loss == "squared_hinge":
        score = torch.sigmoid(x) if inputs == "logits" else x
    else:
        score = x if inputs == "logits" else torch.logit(x, eps=_prob_eps(x.dtype))

    is_conv = y == 2
    pair_term = x.new_zeros(())
    for label, margin in ((1, margin_click_only), (0, margin_no_click)):
        ii, jj = _pair_indices(codes, is_conv, y == label)
        if ii.size == 0:
            continue
        ii_t = torch.from_numpy(ii).to(x.device)
        jj_t = torch.from_numpy(jj).to(x.device)
        wp = w[ii_t] * w[jj_t]
        den = wp.sum()
        if not float(den.detach()) > 0.0:
            continue
        diff = score[jj_t] - score[ii_t] + margin
        if pair_loss == "squared_hinge":
            phi = diff.clamp_min(0.0).square()
        else:
            phi = F.softplus(diff)
        pair_term = pair_term + (wp * phi).sum() / den
    return bce + lam * w.sum() * pair_term


# --------------------------------------------------------------------------- public API


def pwiser_loss(
    logits_or_probs: torch.Tensor | npt.ArrayLike,
    y: torch.Tensor | npt.ArrayLike,
    group: Any = None,
    weight: torch.Tensor | npt.ArrayLike | None = None,
    *,
    lam: float = DEFAULT_LAM,
    margin_click_only: float = DEFAULT_MARGIN_CLICK_ONLY,
    margin_no_click: float = DEFAULT_MARGIN_NO_CLICK,
    pair_loss: PairLossName = "squared_hinge",
    inputs: InputsName = "logits",
    reduction: ReductionName = "mean",
) -> torch.Tensor:
    """BCE + λ·PWiseR (docs/mathematics.md §2), differentiable with autograd.

    Parameters
    ----------
    logits_or_probs : Tensor of shape (n,) or (n, 1)
        CTR logits (``inputs="logits"``) or probabilities in [0, 1]
        (``inputs="probs"``). Floating point; gradients flow through it.
    y : array-like or Tensor of shape (n,)
        Funnel labels ``click + conversion`` in {0, 1, 2}.
    group : array-like of shape (n,), optional
        Per-row group ids of any hashable type and order (equal ids = one
        group). Pairs are formed within groups only. ``None``: the whole batch
        is one group.
    weight : array-like or Tensor of shape (n,), optional
        Non-negative row weights (default 1). A pair (i, j) weighs ``w_i·w_j``.
    lam : float, default DEFAULT_LAM
        λ ≥ 0, the weight of the pairwise term.
    margin_click_only : float, default DEFAULT_MARGIN_CLICK_ONLY
        Margin ``m1`` of the conversion vs click-only pairs.
    margin_no_click : float, default DEFAULT_MARGIN_NO_CLICK
        Margin ``m2`` of the conversion vs non-click pairs.
    pair_loss : {"squared_hinge", "logistic"}, default "squared_hinge"
        ``max(0, p_j − p_i + m)²`` on probabilities (the paper's), or
        ``log(1 + exp(z_j − z_i + m))`` on logits (with ``inputs="probs"`` the
        logits are ``logit(clamp(p))``).
    inputs : {"logits", "probs"}, default "logits"
        What ``logits_or_probs`` holds. Logits give a numerically stable BCE.
    reduction : {"mean", "sum"}, default "mean"
        ``"sum"``: ``L = Σ w_i BCE_i + λ·W·PWiseR`` with ``W = Σ w_i`` (the
        boosting objective's sum form). ``"mean"``: ``L / W`` = weighted-mean
        BCE + λ·PWiseR.

    Returns
    -------
    loss : Tensor
        0-dim tensor with the dtype and device of the input.

    Raises
    ------
    TypeError
        Non-numeric inputs, labels or weights, or non-real parameters.
    ValueError
        Labels outside {0, 1, 2}, length mismatches, negative or non-finite
        weights, NaN inputs, probabilities outside [0, 1], missing group ids,
        negative λ or margins, unknown option names, or ``reduction="mean"``
        with zero total weight (e.g. an empty batch).

    Notes
    -----
    Each PWiseR term is the weighted mean over all eligible within-group pairs
    of the batch (normaliser ``Σ_g W_P,g·W_T,g``); a term with no pair (no
    conversion, or no partner in the conversions' groups) contributes exactly
    0. Pairs are enumerated group-block-wise in NumPy (outside autograd), so
    memory is proportional to the number of pairs.

    Examples
    --------
    >>> import torch
    >>> from gbdt_pwiser.neural.loss import pwiser_loss
    >>> z = torch.tensor([2.0, 0.5, -1.0, 0.0], requires_grad=True)
    >>> loss = pwiser_loss(z, [2, 1, 0, 0], group=["a", "a", "a", "b"])
    >>> loss.backward()
    """
    lam, m1, m2 = check_lam_margins(lam, margin_click_only, margin_no_click)
    pair_loss = PAIR_LOSSES[check_pair_loss(pair_loss)]  # type: ignore[assignment]
    inputs = _check_choice("inputs", inputs, _INPUTS)
    reduction = _check_choice("reduction", reduction, _REDUCTIONS)

    x = _check_input(logits_or_probs, inputs)
    n = int(x.shape[0])
    labels = _labels(y, n)
    codes = np.zeros(n, dtype=np.int64) if group is None else group_codes(_to_numpy(group), n)
    w = _weights(weight, n, x)

    total = _pwiser_sum(
        x,
        labels,
        codes,
        w,
        lam=lam,
        margin_click_only=m1,
        margin_no_click=m2,
        pair_loss=pair_loss,
        inputs=inputs,
    )
    if reduction == "sum":
        return total
    w_total = w.sum()
    if not float(w_total.detach()) > 0.0:
        raise ValueError("reduction='mean' needs a positive total weight (the batch is empty or all weights are 0)")
    return total / w_total


class PWiseRLoss(torch.nn.Module):
    """BCE + λ·PWiseR as a :class:`torch.nn.Module`.

    Stores the loss parameters; ``forward(input, y, group=None, weight=None)``
    calls :func:`pwiser_loss` with them.

    Parameters
    ----------
    lam, margin_click_only, margin_no_click, pair_loss, inputs, reduction
        See :func:`pwiser_loss`.

    Examples
    --------
    >>> import torch
    >>> from gbdt_pwiser.neural.loss import PWiseRLoss
    >>> crit = PWiseRLoss(lam=0.5)
    >>> loss = crit(torch.zeros(3), [2, 1, 0])
    """

    def __init__(
        self,
        lam: float = DEFAULT_LAM,
        margin_click_only: float = DEFAULT_MARGIN_CLICK_ONLY,
        margin_no_click: float = DEFAULT_MARGIN_NO_CLICK,
        pair_loss: PairLossName = "squared_hinge",
        inputs: InputsName = "logits",
        reduction: ReductionName = "mean",
    ) -> None:
        super().__init__()
        self.lam, self.margin_click_only, self.margin_no_click = check_lam_margins(
            lam, margin_click_only, margin_no_click
        )
        self.pair_loss = PAIR_LOSSES[check_pair_loss(pair_loss)]
        self.inputs = _check_choice("inputs", inputs, _INPUTS)
        self.reduction = _check_choice("reduction", reduction, _REDUCTIONS)

    def forward(
        self,
        input: torch.Tensor,
        y: torch.Tensor | npt.ArrayLike,
        group: Any = None,
        weight: torch.Tensor | npt.ArrayLike | None = None,
    ) -> torch.Tensor:
        """Compute the loss; see :func:`pwiser_loss`."""
        return pwiser_loss(
            input,
            y,
            group,
            weight,
            lam=self.lam,
            margin_click_only=self.margin_click_only,
            margin_no_click=self.margin_no_click,
            pair_loss=self.pair_loss,  # type: ignore[arg-type]
            inputs=self.inputs,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"lam={self.lam}, margin_click_only={self.margin_click_only}, "
            f"margin_no_click={self.margin_no_click}, pair_loss={self.pair_loss!r}, "
            f"inputs={self.inputs!r}, reduction={self.reduction!r}"
        )
