"""The external-memory engine: XGBoost reads a :class:`~gbdt_pwiser.datasets.ParquetLog` one shard at a time.

XGBoost's external memory reads the features one shard at a time
(``xgboost.DataIter``) and keeps only its quantised pages on disk; labels,
weights and group boundaries (its ``MetaInfo``) stay in memory, and so does
the objective's own per-row state (labels, weights and group sizes,
:class:`~gbdt_pwiser.datasets.parquet_log.LogState`). Everything else — the
objectives, eval sets, early stopping — is the in-process engine's
(:mod:`gbdt_pwiser.engines.local`); only the rows differ (:class:`ExternalRows`).

The estimator's objective holds the groups itself (one size per group when
every shard holds whole groups, else one code per row), so the shards may
scatter a group's rows and XGBoost gets no ``qid``. :func:`external_dmatrix`
builds a matrix for a user's own ``xgb.train`` with
:class:`~gbdt_pwiser.PWiseRObjective`, which reads the groups from the
matrix: there each shard must hold whole groups, its rows sorted
(contiguous) by group, and a group id met in two shards is an error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._optional import require
from .._validation import check_no_inf
from ..datasets.parquet_log import LogState, ParquetLog
from ..datasets.sources import check_shard_groups, group_runs, group_starts, list_files
from ..objectives._adapters import GROUP_START_FIELD
from ._base import FitResult
from ._inputs import check_sample_weight
from .local import LocalData, LocalEngine, label_sums

# ParquetShardIter subclasses xgboost.DataIter, so the module __getattr__ below builds it on first use
__all__ = ["ExternalEngine", "ExternalRows", "ParquetShardIter", "external_dmatrix"]  # noqa: F822


class _ShardReader:
    """Reads shard ``i`` as XGBoost's batch (features, labels, weights; groups when asked), checking the layout."""

    def __init__(
        self,
        files: Sequence[str],
        features: Sequence[str] | None,
        label: Any,
        group: str,
        weight: str | None = None,
        base_margin: str | None = None,
        clicked_only: bool = False,
        row_mask: np.ndarray | None = None,
        row_weights: np.ndarray | None = None,
        log: ParquetLog | None = None,
        categories: dict[str, Any] | None = None,
        groups: bool = True,
    ) -> None:
        self.files = list(files)
        self.clicked_only = clicked_only
        self.row_mask = row_mask  # one bool per row of the files, in their order: only those rows
        self.row_weights = row_weights  # one weight per row given (after row_mask), instead of the weight column
        self.categories = categories  # each categorical feature's categories (None: numeric features)
        self.groups = groups  # give the groups to XGBoost (qid, or group-start flags beside weights)
        self._row0 = 0
        self._w0 = 0
        self.log = (
            log
            if log is not None
            else ParquetLog(self.files, label=label, group=group, features=features, weight=weight)
        )
        self.base_margin = base_margin
        self.features = self.log.columns(self.files)
        if base_margin is not None and base_margin in self.features:
            self.features.remove(base_margin)
        self._pos = 0
        self._group_offset = 0
        self._heads: list[np.ndarray] = []
        self._checked = False

    def _take(self, n: int) -> np.ndarray | None:
        if self.row_mask is None:
            return None
        keep = self.row_mask[self._row0 : self._row0 + n]
        self._row0 += n
        return keep

    def _read(self, i: int) -> dict[str, Any]:
        where = f"shard {self.files[i]!r}"
        shard, extra = self.log.read_shard(
            self.files[i], self.features, self.categories, self._take, [self.base_margin] if self.base_margin else []
        )
        data, y = shard.X, shard.y
        check_no_inf(data, where, self.features)
        w = shard.weight
        if self.row_weights is not None:
            w = self.row_weights[self._w0 : self._w0 + y.size]
            self._w0 += y.size
        keep = np.flatnonzero(y >= 1) if self.clicked_only else None
        if keep is not None:  # the clicked-space CVR booster: clicked rows, 0/1 conversion labels
            out = {
                "data": data[keep] if shard.feature_types is not None else data.iloc[keep],
                "label": (y[keep] == 2).astype(np.float32),
            }
            if w is not None:
                out["weight"] = w[keep]
        else:
            out = {"data": data, "label": y.astype(np.float32)}
            if w is not None:
                out["weight"] = w
            if self.groups:
                ptr, heads = group_runs(shard.group, where)
                if not self._checked:
                    self._heads.append(heads)
                if w is None:
                    out["qid"] = np.repeat(
                        np.arange(self._group_offset, self._group_offset + ptr.size - 1, dtype=np.int64), np.diff(ptr)
                    )
                else:  # XGBoost's sketch takes only per-group weights beside qid: flag the groups instead
                    out[GROUP_START_FIELD] = group_starts(ptr, y.size)
                self._group_offset += ptr.size - 1
        if shard.feature_types is not None:
            out["feature_names"], out["feature_types"] = self.features, shard.feature_types
        if self.base_margin:
            bm = extra.column(self.base_margin).to_numpy(zero_copy_only=False).astype(np.float64)
            out["base_margin"] = bm if keep is None else bm[keep]
        return out

    def _end_of_pass(self) -> None:
        if not self._checked:
            self._checked = True
            if self.groups:  # every group whole in one shard (qid rises across the shards)
                check_shard_groups(self._heads, self.files)
            self._heads = []


def _make_iter_class() -> type:
    import xgboost as xgb

    require("pyarrow", extra="parquet", feature="ParquetShardIter (external memory over Parquet shards)")

    class ParquetShardIter(_ShardReader, xgb.DataIter):
        """``xgboost.DataIter`` over Parquet shards with funnel labels and whole groups per shard.

        Parameters
        ----------
        files : list of str
            The shards (see :func:`gbdt_pwiser.datasets.sources.list_files`), read in this order.
        features : list of str or None
            Feature columns (default: every column but label/group/weight).
        label : str or [str, str]
            The funnel-label column, or the click and conversion columns.
        group : str
            The group-id column.
        weight : str, optional
        base_margin : str, optional
            Column of starting margins.
        cache_prefix : str, optional
            Where XGBoost keeps its external-memory pages (default: a temporary
            file next to the first shard).
        on_host : bool, default=True
            Keep the pages in host memory instead of on disk (XGBoost reads
            it for GPU training; CPU pages go to ``cache_prefix``).
        clicked_only : bool, default=False
            Give only the clicked rows, labelled 0/1 by conversion, without
            groups (the clicked-space CVR booster's data).
        row_mask : ndarray of bool, optional
            One flag per row of ``files`` (in their order): give only those
            rows (whole groups; calibration's auxiliary fits).
        row_weights : ndarray, optional
            One weight per row given (after ``row_mask``, before
            ``clicked_only``), instead of the ``weight`` column (the
            conversion-weighted CTR booster's weights).
        log : ParquetLog, optional
            The log whose columns to read (instead of ``features``, ``label``,
            ``group``, ``weight``).
        categories : dict, optional
            Each categorical feature's categories (fixed over the shards).
        groups : bool, default=True
            Give the groups to XGBoost (``qid``, or group-start flags beside
            weights; each group must then lie whole in one shard). The
            estimator's objective holds the groups itself and passes False.
        """

        def __init__(
            self,
            files,
            features,
            label,
            group,
            weight=None,
            base_margin=None,
            *,
            cache_prefix=None,
            on_host=True,
            clicked_only=False,
            row_mask=None,
            row_weights=None,
            log=None,
            categories=None,
            groups=True,
        ):
            files = list(files)
            if cache_prefix is None:
                cache_prefix = os.path.join(os.path.dirname(os.path.abspath(files[0])), ".xgb-cache")
            # XGBoost's part first: a bad column below must not leave a half-made DataIter to its __del__
            xgb.DataIter.__init__(self, cache_prefix=cache_prefix, on_host=on_host)
            _ShardReader.__init__(
                self,
                files,
                features,
                label,
                group,
                weight,
                base_margin,
                clicked_only,
                row_mask,
                row_weights,
                log,
                categories,
                groups,
            )

        def next(self, input_data: Any) -> bool:
            while self._pos < len(self.files):
                batch = self._read(self._pos)
                self._pos += 1
                if batch["label"].size:  # skip an empty shard (or one without clicks)
                    input_data(**batch)
                    return True
            self._end_of_pass()
            return False

        def reset(self) -> None:
            self._pos = 0
            self._group_offset = 0
            self._row0 = 0
            self._w0 = 0

    return ParquetShardIter


def __getattr__(name: str) -> Any:
    if name == "ParquetShardIter":
        cls = _make_iter_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def external_dmatrix(
    path: str | os.PathLike[str] | Sequence[str],
    *,
    label: str | Sequence[str],
    group: str,
    features: Sequence[str] | None = None,
    weight: str | None = None,
    base_margin: str | None = None,
    cache_prefix: str | None = None,
    on_host: bool = True,
    **kwargs: Any,
) -> Any:
    """An ``xgboost.ExtMemQuantileDMatrix`` over a folder or glob of Parquet shards.

    Labels become funnel labels and groups a ``qid`` rising across the shards;
    with ``weight`` (XGBoost's sketch keeps only per-group weights beside
    ``qid``) the groups travel as group-start flags in ``label_lower_bound``
    instead. :class:`gbdt_pwiser.PWiseRObjective` reads either. ``kwargs`` go
    to ``ExtMemQuantileDMatrix`` (``max_bin``, ``nthread``...).

    Returns
    -------
    xgboost.ExtMemQuantileDMatrix
    """
    import xgboost as xgb

    it = __getattr__("ParquetShardIter")(
        list_files(path, "parquet"),
        features,
        label,
        group,
        weight,
        base_margin,
        cache_prefix=cache_prefix,
        on_host=on_host,
    )
    return xgb.ExtMemQuantileDMatrix(it, **kwargs)


class ExternalRows:
    """Training rows in Parquet shards: ``xgboost.ExtMemQuantileDMatrix`` pages under a temporary folder.

    ``quantised``: XGBoost sees these rows as bins only (what a continued
    booster's starting margins must be corrected for, see the local engine).

    At most one external matrix is alive at a time (all rows for the CTR and
    entire-space CVR boosters, the clicked rows for the clicked-space one);
    its labels and weights are the shards' own, in the order of ``state``.
    The temporary folder (inside ``log.cache_dir``) is removed by :meth:`close`.
    """

    quantised = True

    def __init__(
        self,
        log: ParquetLog,
        state: LogState,
        engine: ExternalEngine,
        nthread: int | None,
        row_mask: np.ndarray | None = None,
    ) -> None:
        self.log, self.state, self.engine, self.nthread = log, state, engine, nthread
        self.row_mask = row_mask  # over the rows of state.shards; state then describes only the marked rows
        self.cache_dir = tempfile.mkdtemp(prefix="gbdt-pwiser-extmem-", dir=log.cache_dir)
        self._dm: tuple[tuple[bool, int, int], Any, Any] | None = None

    def _matrix(self, clicked_only: bool, params: dict[str, Any], weight: np.ndarray | None) -> Any:
        import xgboost as xgb

        key = (clicked_only, int(params.get("max_bin", 256)), id(weight))
        if self._dm is None or self._dm[0] != key:
            self._dm = None  # free the previous pages first
            prefix = os.path.join(self.cache_dir, f"{'clicked' if clicked_only else 'all'}-{key[1]}")
            # no groups: the objective holds them (sizes or per-row codes), XGBoost needs none
            it = __getattr__("ParquetShardIter")(
                self.state.shards,
                None,
                None,
                self.log.group,
                cache_prefix=prefix,
                on_host=False,
                clicked_only=clicked_only,
                row_mask=self.row_mask,
                row_weights=weight,
                log=self.log,
                categories=self.state.categories or None,
                groups=False,
            )
            dm = xgb.ExtMemQuantileDMatrix(
                it,
                missing=np.nan,
                max_bin=key[1],
                nthread=params.get("nthread"),
                enable_categorical=bool(self.state.categories),
            )
            self._dm = (key, dm, weight)  # the weights kept alive: their id is in the key
        return self._dm[1]

    def select(self, which: str, params: dict[str, Any], weight: np.ndarray | None = None) -> Any:
        """The matrix of the rows ``which``; ``weight``: the booster's weight of every row (None: the log's)."""
        dm = self._matrix(which == "clicked", params, weight)
        want = self.state.y.size if which == "all" else int(np.count_nonzero(self.state.y >= 1))
        if dm.num_row() != want:  # the shards changed under the fit
            raise ValueError(
                f"the shards gave {dm.num_row()} {'clicked ' if which == 'clicked' else ''}rows on "
                f"a second read, {want} on the first"
            )
        return dm

    def _features(self) -> Any:
        return self.log.iter_features(self.state.shards, self.row_mask, self.state.categories)

    def _check_rows(self, got: int) -> None:
        if got != self.state.y.size:
            raise ValueError(f"the shards gave {got} rows on a second read, {self.state.y.size} on the first")

    def margin(self, fit: FitResult) -> np.ndarray:
        """A booster's margin on every row, predicted one shard at a time from the raw features (as in memory)."""
        out = np.concatenate([self.engine.predict_margin(fit, df, self.nthread) for df in self._features()])
        self._check_rows(out.size)
        return out

    def predictions(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(pCTR, pCVR)`` of a fitted (uncalibrated) model on every row, one shard at a time."""
        parts = [model._predict_all(df) for df in self._features()]
        pctr, pcvr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        self._check_rows(pctr.size)
        return pctr, pcvr

    def subset(self, mask: np.ndarray) -> ExternalRows:
        """The rows ``mask`` marks (over this object's rows), read from the same shards."""
        if self.row_mask is None:
            full = mask
        else:
            full = np.zeros(self.row_mask.size, dtype=bool)
            full[np.flatnonzero(self.row_mask)[mask]] = True
        state = self.state._replace(y=self.state.y[mask])  # sizes and weights: set by the engine
        return ExternalRows(self.log, state, self.engine, self.nthread, full)

    def close(self) -> None:
        self._dm = None
        shutil.rmtree(self.cache_dir, ignore_errors=True)


class ExternalEngine(LocalEngine):
    """Out of core: the features of a :class:`~gbdt_pwiser.datasets.ParquetLog` stay in its shards."""

    kind = "external"

    def prepare(self, est: Any, X: Any, y: Any, group: Any, sample_weight: Any) -> LocalData:
        if y is not None or group is not None or sample_weight is not None:
            raise ValueError(
                "with X=ParquetLog(...), labels, groups and weights come from its columns "
                "(label=, group=, weight=): call fit(log) with y, group and sample_weight unset"
            )
        log: ParquetLog = X
        state = log.read_state(with_ids=getattr(est, "calibration", None) is not None)
        log.warn_inferred(state)
        features = log.columns(state.shards)
        w = check_sample_weight(state.weight, state.y.size)
        # the feature layout predict and eval_set are checked against (columns by name, categories)
        est.n_features_in_ = len(features)
        est.feature_names_in_ = np.asarray(features, dtype=object)
        est._columns, est._categorical = list(features), list(state.categories)
        est.categories_ = {c: pd.Index(v) for c, v in state.categories.items()}
        # whole groups: their sizes; scattered ones: a code per row (the objective pairs rows wherever they are)
        ptr = None if state.sizes is None else np.concatenate([[0], np.cumsum(state.sizes)]).astype(np.int64)
        nthread = est._nthread()
        return LocalData(
            ExternalRows(log, state, self, nthread),
            state.y,
            w,
            ptr,
            label_sums(state.y, w),
            nthread,
            ids=state.ids,
            codes=state.codes,
        )
