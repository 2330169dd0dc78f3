"""Where :meth:`CTCVRClassifier._fit_chain` gets its training rows: memory, or Parquet shards out of core.

A rows object answers three requests of the chain, in its row order (groups
contiguous): ``all(params)`` the features of every row (what
``TrainData.X`` holds), ``clicked(idx, params)`` those of the clicked rows
``idx``, and ``ctr_margin()`` the fitted CTR booster's margin of every row
(the entire-space CVR booster's input). ``params`` are the booster's native
parameters (an external-memory matrix is quantised with their ``max_bin``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._external import LogState, ParquetLog
from ._inputs import take

__all__ = ["InMemoryRows", "ParquetRows"]


class InMemoryRows:
    """Training rows held in memory (array, CSR matrix or DataFrame)."""

    def __init__(self, est: Any, X: Any) -> None:
        self.est, self.X = est, X

    def all(self, params: dict[str, Any]) -> Any:
        return self.X

    def clicked(self, idx: np.ndarray, params: dict[str, Any]) -> Any:
        return take(self.X, idx)

    def ctr_margin(self) -> np.ndarray:
        return self.est._ctr_margin(self.X)


class ParquetRows:
    """Training rows in Parquet shards: ``xgboost.ExtMemQuantileDMatrix`` pages under ``cache_dir``.

    At most one external matrix is alive at a time (all rows for the CTR and
    entire-space CVR boosters, the clicked rows for the clicked-space one);
    its labels and weights are the shards' own, in the order of ``state``.
    """

    def __init__(self, est: Any, log: ParquetLog, state: LogState, cache_dir: str) -> None:
        self.est, self.log, self.state, self.cache_dir = est, log, state, cache_dir
        self._dm: tuple[tuple[bool, int], Any] | None = None

    def _matrix(self, clicked_only: bool, params: dict[str, Any]) -> Any:
        key = (clicked_only, int(params.get("max_bin", 256)))
        if self._dm is None or self._dm[0] != key:
            self._dm = None  # free the previous pages first
            prefix = f"{self.cache_dir}/{'clicked' if clicked_only else 'all'}-{key[1]}"
            dm = self.log.dmatrix(self.state.shards, clicked_only=clicked_only, cache_prefix=prefix,
                                  max_bin=key[1], nthread=params.get("nthread"))
            self._dm = (key, dm)
        return self._dm[1]

    def all(self, params: dict[str, Any]) -> Any:
        return self._matrix(False, params)

    def clicked(self, idx: np.ndarray, params: dict[str, Any]) -> Any:
        dm = self._matrix(True, params)
        if dm.num_row() != idx.size:  # the shards changed under the fit
            raise ValueError(f"the shards gave {dm.num_row()} clicked rows on a second read, "
                             f"{idx.size} on the first")
        return dm

    def ctr_margin(self) -> np.ndarray:
        """The CTR margin, predicted one shard at a time from the raw features (as in memory)."""
        out = np.concatenate([self.est._ctr_margin(df) for df in self.log.iter_features(self.state.shards)])
        if out.size != self.state.y.size:
            raise ValueError(f"the shards gave {out.size} rows on a second read, {self.state.y.size} on the first")
        return out

    def close(self) -> None:
        self._dm = None
