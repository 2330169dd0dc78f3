"""The stages every command shares: load or simulate the log, split it by group, build the GBDT chain."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UserError", "load_log", "split_log", "make_model", "fit_model", "fit_log", "dask_client", "log_rates"]


class UserError(Exception):
    """A problem with the user's input: reported in one line, without a traceback."""


def load_log(args: argparse.Namespace) -> Any:
    """The ``AdLog`` of ``--data``/``--format``/``--nrows``, or a simulated one of ``--requests`` requests.

    ``--data`` is a CSV file, or Parquet: a folder of ``.parquet`` files, a
    glob of them or one file. Parquet with ``--dask-workers``/``--scheduler``
    stays on the cluster: a :class:`ParquetLog` (read on the workers).
    """
    from .. import datasets
    from ..datasets.parquet import check_parquet_columns, load_parquet_log
    from ..datasets.sources import is_parquet, list_files

    if args.data is None:
        return datasets.make_ad_log(args.requests, random_state=args.seed)
    path = Path(args.data)
    if is_parquet(path):
        try:
            files = list_files(path, "parquet")
            check_parquet_columns(files, args.format)
            if not _distributed(args):
                return load_parquet_log(path, args.format, nrows=args.nrows)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load {path} as {args.format} Parquet: {exc}") from exc
        if args.nrows is not None:
            raise UserError("--nrows is not supported with a Parquet log on Dask (the workers read whole files); "
                            "select the files with a glob instead")
        from ._parquet import ParquetLog

        return ParquetLog(files, args.format)
    if not path.exists():
        raise UserError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise UserError(f"cannot read {path}: it is a folder without Parquet files, give a CSV file")
    loader = datasets.load_aliexpress if args.format == "aliexpress" else datasets.load_ali_ccp
    try:
        return loader(path, nrows=args.nrows)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot load {path} as {args.format}: {exc}") from exc


def split_log(log: Any, test_size: float, seed: int, args: argparse.Namespace | None = None) -> tuple[Any, Any]:
    """Train and test parts with no group in both; the test categories aligned to the training ones.

    A Parquet log on Dask (:class:`ParquetLog`) is split on the cluster by a
    hash of the group id; its test part comes back as an ``AdLog``.
    """
    from ..datasets import train_test_split_by_group
    from ._parquet import ParquetLog, split_parquet_log

    if isinstance(log, ParquetLog):
        if args is None:
            raise UserError("a Parquet log on Dask needs the command's options to reach the cluster")
        with dask_client(args) as client:
            try:
                return split_parquet_log(log, args, client)
            except ValueError as exc:
                raise UserError(f"cannot split the Parquet log {args.data}: {exc}") from exc

    if log.n_groups < 4:
        raise UserError(f"too few groups to split: {log.n_groups} (need at least 4)")
    try:
        train, test = train_test_split_by_group(log, test_size=test_size, random_state=seed)
    except ValueError as exc:
        raise UserError(f"cannot split the data by group: {exc}") from exc
    if len(train) < 20 or len(test) < 5:
        raise UserError(f"too few rows to split: {len(log)}")
    if (train.y >= 1).sum() == 0:
        raise UserError("the training part has no clicks")
    if (train.y == 2).sum() == 0:
        raise UserError("the training part has no conversions: nothing to compare")
    return train, test.align_categories(train)


def make_model(args: argparse.Namespace, lam: float, **overrides: Any) -> Any:
    """The GBDT chain of the command line's options; ``overrides`` replace estimator parameters."""
    from ..sklearn import CTCVRClassifier
    from ._output import on_terminal

    params = dict(
        backend=args.backend, lam=lam, margin_click_only=args.margin_click_only,
        margin_no_click=args.margin_no_click, pair_loss=args.pair_loss, pairs=args.pairs,
        cvr_space=args.cvr_space, n_jobs=args.n_jobs, random_state=args.seed,
        verbose=on_terminal(args.quiet),  # bars over the boosting rounds, on a terminal only
    )
    for name in ("n_estimators", "learning_rate", "max_depth"):
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    if _distributed(args):
        from ..dask import DaskCTCVRClassifier

        return DaskCTCVRClassifier(**{**params, **overrides})
    return CTCVRClassifier(**{**params, **overrides})


def _distributed(args: argparse.Namespace) -> bool:
    return getattr(args, "dask_workers", None) is not None or getattr(args, "scheduler", None) is not None


@contextlib.contextmanager
def dask_client(args: argparse.Namespace) -> Any:
    """A ``distributed.Client`` of ``--scheduler``, or of a local cluster of ``--dask-workers`` processes."""
    import logging

    try:
        import distributed

        import gbdt_pwiser.dask  # noqa: F401  (the dask extra)
    except ImportError as exc:
        raise UserError(f"--dask-workers/--scheduler need the dask extra (pip install 'gbdt-pwiser[dask]'): "
                        f"{exc}") from exc
    # Without --debug, the workers' logs of a failed task (the error again, with its traceback) and
    # asyncio's of the client tasks a Ctrl-C interrupts are not shown: the command reports in one line.
    quiet = logging.ERROR if getattr(args, "debug", False) else logging.CRITICAL
    asyncio_log = logging.getLogger("asyncio")
    previous = asyncio_log.level
    asyncio_log.setLevel(max(previous, quiet))
    try:
        if args.scheduler is not None:
            try:
                client = distributed.Client(args.scheduler, timeout=f"{args.connect_timeout}s")
            except (OSError, TimeoutError, ValueError, TypeError) as exc:  # TypeError: tls:// without TLS settings
                raise UserError(f"cannot connect to the Dask scheduler {args.scheduler}: {exc}") from exc
            with client:
                yield client
            return
        # the workers ignore Ctrl-C (it reaches the terminal's whole process group): the command handles it
        with distributed.LocalCluster(n_workers=args.dask_workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=quiet,
                                      preload=["gbdt_pwiser.cli._dask_worker"]) as cluster:
            with distributed.Client(cluster) as client:
                yield client
    finally:
        asyncio_log.setLevel(previous)


def fit_log(model: Any, args: argparse.Namespace, train: Any) -> Any:
    """``fit_model`` on an ``AdLog``, or on the training part of a Parquet log on Dask."""
    from ._parquet import ParquetTrain, fit_parquet

    if isinstance(train, ParquetTrain):
        with dask_client(args) as client:
            return fit_parquet(model, train, client)
    return fit_model(model, args, train.X, train.y, train.group)


def log_rates(log: Any) -> tuple[float, float]:
    """The log's click rate and conversion rate among clicks."""
    from ._parquet import ParquetLog

    if isinstance(log, ParquetLog):
        return log.ctr, log.cvr_given_click
    clicked = log.y >= 1
    return float(np.mean(clicked)), float(np.mean(log.y[clicked] == 2)) if clicked.any() else float("nan")


def fit_model(model: Any, args: argparse.Namespace, X: Any, y: Any, group: Any) -> Any:
    """``model.fit(X, y, group=group)``; with ``--dask-workers``/``--scheduler`` on the cluster.

    The in-memory log is split into dask partitions (2 per worker), whole
    groups in each (``partition_by_group``). The fitted model keeps no client.
    """
    if not _distributed(args):
        return model.fit(X, y, group=group)
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    from ..dask import partition_by_group

    with dask_client(args) as client:
        nparts = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        frame = pd.DataFrame(X).assign(__y=np.asarray(y), __g=np.asarray(group)).reset_index(drop=True)
        # scattered to the workers, not embedded in the task graph (distributed warns about large graphs)
        cuts = np.linspace(0, len(frame), nparts + 1).astype(int)
        pieces = client.scatter([frame.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])])
        # whole groups up front: no failed layout check on the workers
        ddf = partition_by_group(dd.from_delayed(pieces, meta=frame.iloc[:0], verify_meta=False), "__g")
        model.client = client
        try:
            model.fit(ddf[list(X.columns)], ddf["__y"], group=ddf["__g"])
        finally:
            model.client = None
    return model
