"""Neural CTR/CVR multi-task networks (SharedBottom, ESMM, MMoE, PLE) in PyTorch.

Compact, self-contained implementations used to compare the boosted
BCE + λ·PWiseR models with the neural multi-task models of the PWiseR paper
(arXiv 2406.02163). Requires the ``[torch]`` extra; ``import gbdt_pwiser``
never imports this module. Training is in ``gbdt_pwiser.neural.training``,
the column encoding in ``gbdt_pwiser.neural.encoding``.

Every network embeds the category indices, concatenates the embeddings with
the standardised numeric columns, and returns ``(ctr_logit, cvr_logit)``;
``pCTCVR = pCTR·pCVR``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["SharedBottom", "ESMM", "MMoE", "PLE", "MultiTaskModel", "MODELS"]


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


def _gate(gate: nn.Module, h: torch.Tensor, outs: list[torch.Tensor]) -> torch.Tensor:
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
