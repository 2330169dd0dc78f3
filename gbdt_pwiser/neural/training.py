"""Training of the neural CTR/CVR baselines: ``fit_neural``, group-keeping batches and ``NeuralCTCVR``.

Training (``fit_neural``):

* CTR head: BCE on clicks over all exposures (``loss="bce"``) or
  BCE + λ·PWiseR (``gbdt_pwiser.neural.loss.pwiser_loss``, mean form) on the
  batch (``loss="pwiser"``). Batches keep groups together (groups are
  shuffled, not rows) so that within-group pairs exist in a batch.
* CVR head, ``cvr_space="clicked"`` (default for SharedBottom, MMoE, PLE):
  BCE on conversions over the clicked rows of the batch, the classic setup,
  the same as the boosted chain's ``cvr_space="clicked"``.
* CVR head, ``cvr_space="entire"`` (always for ESMM): BCE of
  ``pCTCVR = pCTR·pCVR`` against conversions over all exposures.

The total loss is the sum of the two heads' (weighted-mean) losses.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
import torch.nn.functional as F

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._labels import as_funnel
from .._validation import (
    PAIR_LOSSES,
    check_int,
    check_lam_margins,
    check_pair_loss,
    check_real,
    check_weight,
    group_codes,
)
from .encoding import FeatureEncoder
from .loss import _check_choice, _pwiser_sum, _to_numpy
from .models import ESMM, MultiTaskModel, _model_class

__all__ = ["NeuralCTCVR", "fit_neural"]


# =========================================================================== losses


def _weighted_bce_logits(logit: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    den = w.sum()
    if logit.numel() == 0 or not float(den) > 0:
        return logit.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logit, target, weight=w, reduction="sum") / den


def _weighted_bce_product(
    ctr_logit: torch.Tensor, cvr_logit: torch.Tensor, target: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """Weighted-mean BCE of ``pCTCVR = σ(a)·σ(b)`` computed in log space."""
    den = w.sum()
    if not float(den) > 0:
        return (ctr_logit.sum() + cvr_logit.sum()) * 0.0
    log_p = F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)
    tiny = float(torch.finfo(log_p.dtype).eps)
    log_p = log_p.clamp(max=-tiny)
    # log(1 - exp(log_p)), stable on both sides of -log 2
    log_1mp = torch.where(log_p > -math.log(2.0), torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p)))
    bce = -(target * log_p + (1.0 - target) * log_1mp)
    return (w * bce).sum() / den


# =========================================================================== training


def _batches(codes: np.ndarray | None, n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row-index batches of about ``batch_size`` rows.

    With groups, groups are shuffled (not rows) and a batch holds the groups
    that start in its ``batch_size`` window, so no group is split unless it is
    larger than ``batch_size`` (then it is cut into ``batch_size`` chunks);
    a batch has fewer than ``2·batch_size`` rows.
    """
    if n == 0:
        return []
    if codes is None:
        perm = rng.permutation(n)
        return [perm[s : s + batch_size] for s in range(0, n, batch_size)]
    n_groups = int(codes.max()) + 1
    rank = rng.permutation(n_groups)
    order = np.lexsort((rng.random(n), rank[codes]))
    g = codes[order]
    pos = np.arange(n)
    boundary = np.ones(n, dtype=bool)
    boundary[1:] = g[1:] != g[:-1]
    start = np.maximum.accumulate(np.where(boundary, pos, 0))
    size = np.bincount(codes, minlength=n_groups)[g]
    key = np.where(size <= batch_size, start // batch_size, pos // batch_size)
    cuts = np.flatnonzero(np.diff(key)) + 1
    return np.split(order, cuts)


class NeuralCTCVR:
    """A fitted neural multi-task model (returned by ``fit_neural``).

    Attributes
    ----------
    model_ : MultiTaskModel
        The trained network (in eval mode).
    encoder_ : FeatureEncoder
        Column encoding learnt on the training DataFrame.
    history_ : list of float
        Mean training loss (CTR head + CVR head) per epoch.
    params_ : dict
        The training parameters.
    """

    def __init__(
        self, model: MultiTaskModel, encoder: FeatureEncoder, history: list[float], params: dict[str, Any]
    ) -> None:
        self.model_ = model
        self.encoder_ = encoder
        self.history_ = history
        self.params_ = params

    def _predict(self, X: pd.DataFrame, batch_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        cat, num = self.encoder_.transform(X)
        device = next(self.model_.parameters()).device
        self.model_.eval()
        ctr = np.empty(len(X), dtype=np.float64)
        cvr = np.empty(len(X), dtype=np.float64)
        with torch.no_grad():
            for s in range(0, len(X), batch_size):
                a, b = self.model_(
                    torch.from_numpy(cat[s : s + batch_size]).to(device),
                    torch.from_numpy(num[s : s + batch_size]).to(device),
                )
                ctr[s : s + batch_size] = torch.sigmoid(a.double()).cpu().numpy()
                cvr[s : s + batch_size] = torch.sigmoid(b.double()).cpu().numpy()
        return ctr, cvr

    def predict_ctr(self, X: pd.DataFrame) -> np.ndarray:
        """pCTR = P(click | exposure), shape (n,)."""
        return self._predict(X)[0]

    def predict_cvr(self, X: pd.DataFrame) -> np.ndarray:
        """pCVR = P(conversion | click, exposure), shape (n,)."""
        return self._predict(X)[1]

    def predict_ctcvr(self, X: pd.DataFrame) -> np.ndarray:
        """pCTCVR = pCTR·pCVR = P(conversion | exposure), shape (n,)."""
        ctr, cvr = self._predict(X)
        return ctr * cvr

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``[1 − pCTCVR, pCTCVR]``, shape (n, 2)."""
        p = self.predict_ctcvr(X)
        return np.column_stack([1.0 - p, p])

    def __repr__(self) -> str:
        return f"NeuralCTCVR(model={type(self.model_).__name__}, loss={self.params_.get('loss')!r})"


def fit_neural(
    model_name: str,
    X_df: pd.DataFrame,
    y: npt.ArrayLike,
    group: Any = None,
    *,
    sample_weight: npt.ArrayLike | None = None,
    loss: Literal["bce", "pwiser"] = "bce",
    lam: float = DEFAULT_LAM,
    margin_click_only: float = DEFAULT_MARGIN_CLICK_ONLY,
    margin_no_click: float = DEFAULT_MARGIN_NO_CLICK,
    pair_loss: Literal["squared_hinge", "logistic"] = "squared_hinge",
    cvr_space: Literal["clicked", "entire"] | None = None,
    epochs: int = 5,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    embedding_dim: int = 8,
    model_params: dict[str, Any] | None = None,
    random_state: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> NeuralCTCVR:
    """Train a neural CTR/CVR multi-task model.

    Parameters
    ----------
    model_name : {"shared_bottom", "esmm", "mmoe", "ple"}
        The architecture (case, ``_`` and ``-`` are ignored).
    X_df : pandas.DataFrame
        Features: ``category``/string columns are embedded (unseen values at
        predict time map to a reserved index), numeric columns are
        standardised with the training statistics.
    y : array-like of shape (n,) or (n, 2)
        Funnel labels ``click + conversion`` in {0, 1, 2}, or ``[click, conversion]``.
    group : array-like of shape (n,), optional
        Group ids (any type). Batches keep groups together and PWiseR pairs
        are formed within groups. ``None``: rows are shuffled and each batch is
        one group.
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights for every loss term.
    loss : {"bce", "pwiser"}, default "bce"
        CTR head loss: BCE, or BCE + λ·PWiseR (mean form, per batch).
    lam, margin_click_only, margin_no_click, pair_loss
        PWiseR parameters (see ``gbdt_pwiser.neural.loss.pwiser_loss``); used
        with ``loss="pwiser"`` only.
    cvr_space : {"clicked", "entire"}, optional
        CVR head loss: BCE on clicked rows, or BCE of pCTR·pCVR on all rows
        (ESMM-style). Default: "entire" for ESMM (the only one allowed),
        "clicked" otherwise.
    epochs : int, default 5
        Passes over the training data.
    batch_size : int, default 1024
        Approximate rows per batch (see Notes).
    lr, weight_decay : float
        Adam learning rate and L2 weight decay.
    embedding_dim : int, default 8
        Dimension of every categorical embedding.
    model_params : dict, optional
        Extra keyword arguments of the model class (hidden sizes, experts …).
    random_state : int, default 0
        Seed of initialisation and batching; same seed ⇒ same model on CPU.
    device : str, default "cpu"
        Torch device to train on.
    progress : bool, default True
        Show a tqdm progress bar over epochs (only on a terminal: tqdm's
        ``disable=None``, so logs and pipes get no bar).

    Returns
    -------
    NeuralCTCVR
        Fitted model with ``predict_ctr``, ``predict_cvr``, ``predict_ctcvr``.

    Notes
    -----
    With groups, a batch holds whole groups (shuffled each epoch) whose start
    falls in its ``batch_size`` window, so it has fewer than
    ``2·batch_size`` rows; a group larger than ``batch_size`` is cut into
    chunks. The global torch RNG state is restored after training and
    deterministic algorithms are enabled while training.
    """
    model_cls = _model_class(model_name)
    loss = _check_choice("loss", loss, ("bce", "pwiser"))
    pair_loss = PAIR_LOSSES[check_pair_loss(pair_loss)]  # type: ignore[assignment]
    lam, m1, m2 = check_lam_margins(lam, margin_click_only, margin_no_click)
    lr = check_real(lr, "lr", lo=0.0)
    weight_decay = check_real(weight_decay, "weight_decay", lo=0.0)
    if cvr_space is None:
        cvr_space = model_cls.default_cvr_space  # type: ignore[assignment]
    cvr_space = _check_choice("cvr_space", cvr_space, ("clicked", "entire"))  # type: ignore[assignment]
    if model_cls is ESMM and cvr_space != "entire":
        raise ValueError("ESMM is trained in the entire space; use cvr_space='entire' (or None)")
    epochs = check_int(epochs, "epochs", lo=1)
    batch_size = check_int(batch_size, "batch_size", lo=1)
    embedding_dim = check_int(embedding_dim, "embedding_dim", lo=1)
    random_state = check_int(random_state, "random_state", lo=0)

    if not isinstance(X_df, pd.DataFrame):
        raise TypeError(f"X_df must be a pandas DataFrame, got {type(X_df).__name__}")
    n = len(X_df)
    if n == 0:
        raise ValueError("X_df is empty")
    labels = as_funnel(_to_numpy(y))
    if labels.shape[0] != n:
        raise ValueError(f"y has length {labels.shape[0]}, X_df has {n} rows")
    codes = None if group is None else group_codes(_to_numpy(group), n)
    w = check_weight(None if sample_weight is None else _to_numpy(sample_weight), n, name="sample_weight")
    w_all = np.ones(n, dtype=np.float32) if w is None else w.astype(np.float32)

    encoder = FeatureEncoder().fit(X_df)
    cat_np, num_np = encoder.transform(X_df)
    dev = torch.device(device)
    cat_t = torch.from_numpy(cat_np).to(dev)
    num_t = torch.from_numpy(num_np).to(dev)
    click_t = torch.from_numpy((labels >= 1).astype(np.float32)).to(dev)
    conv_t = torch.from_numpy((labels == 2).astype(np.float32)).to(dev)
    w_t = torch.from_numpy(w_all).to(dev)
    rng = np.random.default_rng(int(random_state))

    from tqdm.auto import tqdm

    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    history: list[float] = []
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(int(random_state))
            model = model_cls(encoder.cardinalities, len(encoder.num_cols_), int(embedding_dim), **(model_params or {}))
            model.to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
            bar = tqdm(
                range(int(epochs)), disable=None if progress else True, desc=f"{model_cls.__name__}/{loss}", leave=False
            )
            for _ in bar:
                model.train()
                total, count = 0.0, 0
                for idx in _batches(codes, n, int(batch_size), rng):
                    idx_t = torch.from_numpy(idx).to(dev)
                    ctr_logit, cvr_logit = model(cat_t[idx_t], num_t[idx_t])
                    wb = w_t[idx_t]
                    if loss == "pwiser":
                        den = float(wb.sum())
                        if den > 0:
                            ctr_loss = (
                                _pwiser_sum(
                                    ctr_logit,
                                    labels[idx],
                                    codes[idx] if codes is not None else np.zeros(idx.size, dtype=np.int64),
                                    wb,
                                    lam=lam,
                                    margin_click_only=m1,
                                    margin_no_click=m2,
                                    pair_loss=pair_loss,
                                    inputs="logits",
                                )
                                / den
                            )
                        else:
                            ctr_loss = ctr_logit.sum() * 0.0
                    else:
                        ctr_loss = _weighted_bce_logits(ctr_logit, click_t[idx_t], wb)
                    if cvr_space == "entire":
                        cvr_loss = _weighted_bce_product(ctr_logit, cvr_logit, conv_t[idx_t], wb)
                    else:
                        clicked = click_t[idx_t] > 0
                        cvr_loss = _weighted_bce_logits(cvr_logit[clicked], conv_t[idx_t][clicked], wb[clicked])
                    batch_loss = ctr_loss + cvr_loss
                    opt.zero_grad(set_to_none=True)
                    batch_loss.backward()
                    opt.step()
                    total += float(batch_loss.detach()) * idx.size
                    count += idx.size
                history.append(total / max(count, 1))
                bar.set_postfix(loss=f"{history[-1]:.4f}")
            bar.close()
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
    model.eval()
    params = dict(
        model_name=model_cls.__name__,
        loss=loss,
        lam=lam,
        margin_click_only=m1,
        margin_no_click=m2,
        pair_loss=pair_loss,
        cvr_space=cvr_space,
        epochs=int(epochs),
        batch_size=int(batch_size),
        lr=lr,
        weight_decay=weight_decay,
        embedding_dim=int(embedding_dim),
        model_params=dict(model_params or {}),
        random_state=int(random_state),
        device=str(dev),
    )
    return NeuralCTCVR(model, encoder, history, params)
