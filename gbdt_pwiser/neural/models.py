"""Neural CTR/CVR multi-task baselines (SharedBottom, ESMM, MMoE, PLE) in PyTorch.

Compact, self-contained implementations used to compare the boosted
BCE + λ·PWiseR models with the neural multi-task models of the PWiseR paper
(arXiv 2406.02163). Requires the ``[torch]`` extra; ``import gbdt_pwiser``
never imports this module.

Every model embeds the ``category`` (and object/string) columns of a
DataFrame, concatenates the embeddings with the standardised numeric columns,
and returns ``(ctr_logit, cvr_logit)``; ``pCTCVR = pCTR·pCVR``.

Training (:func:`fit_neural`):

* CTR head: BCE on clicks over all exposures (``loss="bce"``) or
  BCE + λ·PWiseR (:func:`gbdt_pwiser.neural.loss.pwiser_loss`, mean form) on the
  batch (``loss="pwiser"``). Batches keep groups together (groups are
  shuffled, not rows) so that within-group pairs exist in a batch.
* CVR head, ``cvr_space="clicked"`` (default for SharedBottom, MMoE, PLE):
  BCE on conversions over the clicked rows of the batch — the classic setup,
  the same as the boosted chain's ``cvr_space="clicked"``.
* CVR head, ``cvr_space="entire"`` (always for ESMM): BCE of
  ``pCTCVR = pCTR·pCVR`` against conversions over all exposures.

The total loss is the sum of the two heads' (weighted-mean) losses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._validation import _check_nonneg_real
from .loss import (
    _check_choice,
    _check_funnel_labels,
    _group_codes,
    _pwiser_sum,
)

__all__ = [
    "SharedBottom",
    "ESMM",
    "MMoE",
    "PLE",
    "MultiTaskModel",
    "NeuralCTCVR",
    "fit_neural",
    "MODELS",
    "FeatureEncoder",
]


# =========================================================================== features


class FeatureEncoder:
    """Turns a DataFrame into (category codes, standardised numerics).

    ``category``, ``object`` and ``string`` columns are categorical: each seen
    value gets an index ``1..K``; index 0 is reserved for values unseen at fit
    time and for missing values. Numeric and boolean columns are standardised
    with the training mean and standard deviation; missing values become 0
    (the training mean).
    """

    def fit(self, X: pd.DataFrame) -> FeatureEncoder:
        """Learn the columns, categories and numeric statistics of ``X``."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        self.cat_cols_: list[Any] = []
        self.num_cols_: list[Any] = []
        self.categories_: dict[Any, pd.Index] = {}
        for col in X.columns:
            s = X[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                self.cat_cols_.append(col)
                self.categories_[col] = pd.Index(s.cat.categories)
            elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                self.cat_cols_.append(col)
                self.categories_[col] = pd.Index(pd.unique(s.dropna()))
            elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
                self.num_cols_.append(col)
            else:
                raise TypeError(
                    f"column {col!r} has unsupported dtype {s.dtype}; use category, string or numeric columns"
                )
        if not self.cat_cols_ and not self.num_cols_:
            raise ValueError("X has no usable feature columns")
        num = self._numeric(X)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(num, axis=0) if num.shape[0] else np.zeros(num.shape[1])
            std = np.nanstd(num, axis=0) if num.shape[0] else np.ones(num.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        self.mean_ = mean
        self.std_ = std
        return self

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes (categories + 1 reserved index) per categorical column."""
        return [len(self.categories_[c]) + 1 for c in self.cat_cols_]

    def _numeric(self, X: pd.DataFrame) -> np.ndarray:
        if not self.num_cols_:
            return np.zeros((len(X), 0), dtype=np.float64)
        num = np.array(X[self.num_cols_].astype(np.float64).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64, copy=True)
        num[~np.isfinite(num)] = np.nan
        return num

    def transform(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(codes int64 (n, n_cat), numerics float32 (n, n_num))``."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        missing = [c for c in self.cat_cols_ + self.num_cols_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the training columns {missing}")
        n = len(X)
        codes = np.zeros((n, len(self.cat_cols_)), dtype=np.int64)
        for k, col in enumerate(self.cat_cols_):
            values = X[col]
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(object)
            # -1 (unseen or missing) + 1 -> the reserved index 0
            codes[:, k] = self.categories_[col].get_indexer(values.to_numpy()).astype(np.int64) + 1
        num = (self._numeric(X) - self.mean_) / self.std_
        num = np.nan_to_num(num, nan=0.0).astype(np.float32)
        return codes, num


# =========================================================================== models


def _mlp(in_dim: int, hidden: Sequence[int], dropout: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, int(h)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = int(h)
    return nn.Sequential(*layers), d


class _Tower(nn.Module):
    def __init__(self, in_dim: int, hidden: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.body, d = _mlp(in_dim, hidden, dropout)
        self.out = nn.Linear(d, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(h)).squeeze(-1)


class MultiTaskModel(nn.Module):
    """Base class: embeddings + numerics → ``(ctr_logit, cvr_logit)``.

    Parameters
    ----------
    cardinalities : sequence of int
        Embedding table size of each categorical column (index 0 reserved).
    n_numeric : int
        Number of numeric input columns.
    embedding_dim : int, default 8
        Dimension of every embedding.
    """

    #: CVR loss space used by :func:`fit_neural` when ``cvr_space`` is None.
    default_cvr_space: str = "clicked"

    def __init__(self, cardinalities: Sequence[int], n_numeric: int, embedding_dim: int = 8) -> None:
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.embeddings = nn.ModuleList(nn.Embedding(int(k), int(embedding_dim)) for k in cardinalities)
        self.n_numeric = int(n_numeric)
        self.input_dim = len(self.embeddings) * int(embedding_dim) + self.n_numeric
        if self.input_dim == 0:
            raise ValueError("the model needs at least one input column")

    def embed(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        """Concatenate the embeddings of ``cat`` (n, n_cat) with ``num`` (n, n_num)."""
        parts = [emb(cat[:, k]) for k, emb in enumerate(self.embeddings)]
        if self.n_numeric:
            parts.append(num)
        return torch.cat(parts, dim=1)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(ctr_logit, cvr_logit)``, each of shape (n,)."""
        raise NotImplementedError


class SharedBottom(MultiTaskModel):
    """Shared-bottom MLP with one tower per task (Caruana 1997)."""

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int = 8,
        bottom: Sequence[int] = (128, 64),
        tower: Sequence[int] = (32,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(cardinalities, n_numeric, embedding_dim)
        self.bottom, d = _mlp(self.input_dim, bottom, dropout)
        self.ctr_tower = _Tower(d, tower, dropout)
        self.cvr_tower = _Tower(d, tower, dropout)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.bottom(self.embed(cat, num))
        return self.ctr_tower(h), self.cvr_tower(h)


class ESMM(MultiTaskModel):
    """Entire Space Multi-task Model (Ma et al., SIGIR 2018).

    Shared embeddings, separate CTR and CVR networks; trained with BCE on
    clicks (pCTR) and on conversions of ``pCTCVR = pCTR·pCVR`` over all
    exposures.
    """

    default_cvr_space = "entire"

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int = 8,
        tower: Sequence[int] = (128, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(cardinalities, n_numeric, embedding_dim)
        self.ctr_tower = _Tower(self.input_dim, tower, dropout)
        self.cvr_tower = _Tower(self.input_dim, tower, dropout)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(cat, num)
        return self.ctr_tower(h), self.cvr_tower(h)


class _Experts(nn.Module):
    def __init__(self, n: int, in_dim: int, hidden: Sequence[int], dropout: float) -> None:
        super().__init__()
        mods = []
        d = in_dim
        for _ in range(n):
            m, d = _mlp(in_dim, hidden, dropout)
            mods.append(m)
        self.experts = nn.ModuleList(mods)
        self.out_dim = d

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        return [e(h) for e in self.experts]


def _gate(gate: nn.Linear, h: torch.Tensor, outs: list[torch.Tensor]) -> torch.Tensor:
    weights = torch.softmax(gate(h), dim=1)  # (n, E)
    return torch.einsum("ne,ned->nd", weights, torch.stack(outs, dim=1))


class MMoE(MultiTaskModel):
    """Multi-gate Mixture-of-Experts (Ma et al., KDD 2018)."""

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int = 8,
        n_experts: int = 4,
        expert: Sequence[int] = (128, 64),
        tower: Sequence[int] = (32,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(cardinalities, n_numeric, embedding_dim)
        if n_experts < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        self.experts = _Experts(n_experts, self.input_dim, expert, dropout)
        self.gates = nn.ModuleList(nn.Linear(self.input_dim, n_experts) for _ in range(2))
        self.ctr_tower = _Tower(self.experts.out_dim, tower, dropout)
        self.cvr_tower = _Tower(self.experts.out_dim, tower, dropout)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(cat, num)
        outs = self.experts(h)
        return (
            self.ctr_tower(_gate(self.gates[0], h, outs)),
            self.cvr_tower(_gate(self.gates[1], h, outs)),
        )


class _CGC(nn.Module):
    """One Customized Gate Control level of PLE (two tasks)."""

    def __init__(
        self,
        in_dim: int,
        n_shared: int,
        n_specific: int,
        expert: Sequence[int],
        dropout: float,
        last: bool,
    ) -> None:
        super().__init__()
        self.task_experts = nn.ModuleList(_Experts(n_specific, in_dim, expert, dropout) for _ in range(2))
        self.shared_experts = _Experts(n_shared, in_dim, expert, dropout)
        self.out_dim = self.shared_experts.out_dim
        self.task_gates = nn.ModuleList(nn.Linear(in_dim, n_specific + n_shared) for _ in range(2))
        self.shared_gate = None if last else nn.Linear(in_dim, 2 * n_specific + n_shared)

    def forward(self, hs: list[torch.Tensor]) -> list[torch.Tensor]:
        # hs = [h_ctr, h_cvr, h_shared]
        task_outs = [self.task_experts[t](hs[t]) for t in range(2)]
        shared_outs = self.shared_experts(hs[2])
        new = [_gate(self.task_gates[t], hs[t], task_outs[t] + shared_outs) for t in range(2)]
        if self.shared_gate is not None:
            new.append(_gate(self.shared_gate, hs[2], task_outs[0] + task_outs[1] + shared_outs))
        return new


class PLE(MultiTaskModel):
    """Progressive Layered Extraction (Tang et al., RecSys 2020)."""

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int = 8,
        n_levels: int = 2,
        n_shared_experts: int = 2,
        n_task_experts: int = 2,
        expert: Sequence[int] = (64,),
        tower: Sequence[int] = (32,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(cardinalities, n_numeric, embedding_dim)
        if n_levels < 1 or n_shared_experts < 1 or n_task_experts < 1:
            raise ValueError("n_levels, n_shared_experts and n_task_experts must be >= 1")
        levels = []
        d = self.input_dim
        for lvl in range(n_levels):
            cgc = _CGC(d, n_shared_experts, n_task_experts, expert, dropout, last=lvl == n_levels - 1)
            levels.append(cgc)
            d = cgc.out_dim
        self.levels = nn.ModuleList(levels)
        self.ctr_tower = _Tower(d, tower, dropout)
        self.cvr_tower = _Tower(d, tower, dropout)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(cat, num)
        hs = [h, h, h]
        for level in self.levels:
            hs = level(hs)
        return self.ctr_tower(hs[0]), self.cvr_tower(hs[1])


MODELS: dict[str, type[MultiTaskModel]] = {
    "sharedbottom": SharedBottom,
    "esmm": ESMM,
    "mmoe": MMoE,
    "ple": PLE,
}


def _model_class(name: Any) -> type[MultiTaskModel]:
    if isinstance(name, type) and issubclass(name, MultiTaskModel):
        return name
    if not isinstance(name, str):
        raise TypeError(f"model_name must be a string, got {type(name).__name__}")
    key = name.lower().replace("_", "").replace("-", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from 'shared_bottom', 'esmm', 'mmoe', 'ple'")
    return MODELS[key]


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
    log_1mp = torch.where(
        log_p > -math.log(2.0), torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p))
    )
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
    """A fitted neural multi-task model (returned by :func:`fit_neural`).

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
        PWiseR parameters (see :func:`gbdt_pwiser.neural.loss.pwiser_loss`); used
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
        Show a tqdm progress bar over epochs.

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
    loss = _check_choice("loss", loss, ("bce", "pwiser"))  # type: ignore[assignment]
    pair_loss = _check_choice("pair_loss", pair_loss, ("squared_hinge", "logistic"))  # type: ignore[assignment]
    lam = _check_nonneg_real(lam, "lam")
    m1 = _check_nonneg_real(margin_click_only, "margin_click_only")
    m2 = _check_nonneg_real(margin_no_click, "margin_no_click")
    lr = _check_nonneg_real(lr, "lr")
    weight_decay = _check_nonneg_real(weight_decay, "weight_decay")
    if cvr_space is None:
        cvr_space = model_cls.default_cvr_space  # type: ignore[assignment]
    cvr_space = _check_choice("cvr_space", cvr_space, ("clicked", "entire"))  # type: ignore[assignment]
    if model_cls is ESMM and cvr_space != "entire":
        raise ValueError("ESMM is trained in the entire space; use cvr_space='entire' (or None)")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("embedding_dim", embedding_dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(random_state, (int, np.integer)) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an int, got {type(random_state).__name__}")

    if not isinstance(X_df, pd.DataFrame):
        raise TypeError(f"X_df must be a pandas DataFrame, got {type(X_df).__name__}")
    n = len(X_df)
    if n == 0:
        raise ValueError("X_df is empty")
    y_arr = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 2:
        from .._labels import funnel_label

        labels = funnel_label(y_arr[:, 0], y_arr[:, 1])
    else:
        labels = _check_funnel_labels(y_arr)
    if labels.shape[0] != n:
        raise ValueError(f"y has length {labels.shape[0]}, X_df has {n} rows")
    codes = None if group is None else _group_codes(group, n)
    if sample_weight is None:
        w_all = np.ones(n, dtype=np.float32)
    else:
        w_np = np.asarray(sample_weight, dtype=np.float64)
        if w_np.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {w_np.shape}")
        if not np.all(np.isfinite(w_np)) or np.any(w_np < 0):
            raise ValueError("sample_weight must be finite and non-negative")
        w_all = w_np.astype(np.float32)

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
            bar = tqdm(range(int(epochs)), disable=not progress, desc=f"{model_cls.__name__}/{loss}", leave=False)
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
