"""The stages the commands share: read or simulate the log of the options, the estimators' settings, a Dask client."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "UserError",
    "read_log",
    "source_description",
    "estimator_params",
    "make_model",
    "dask_client",
    "distributed",
]

#: the options that name the columns of the user's own log
_COLUMNS = ("click", "conversion", "group", "weight", "features", "categorical")


class UserError(Exception):
    """A problem with the user's input: reported in one line, without a traceback."""


def distributed(args: argparse.Namespace) -> bool:
    """Whether the options ask for a Dask cluster (``--dask-workers`` or ``--scheduler``)."""
    return getattr(args, "dask_workers", None) is not None or getattr(args, "scheduler", None) is not None


def _columns(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``load_log`` column arguments of the options, or None for a ``--format`` layout."""
    given = {k: getattr(args, k, None) for k in _COLUMNS}
    if all(v is None for v in given.values()):
        return None
    if args.format is not None:
        raise UserError(
            "--format names one of the paper's layouts; --click/--conversion/--group name your own "
            "columns: give one or the other"
        )
    missing = [f"--{k}" for k in ("click", "conversion", "group") if given[k] is None]
    if missing:
        raise UserError(f"your own columns need --click, --conversion and --group: {', '.join(missing)} missing")
    if args.data is None:
        raise UserError("--click/--conversion/--group name the columns of --data: give --data")
    return given


def source_description(args: argparse.Namespace) -> str:
    """What the data is, in words (the first line of the output)."""
    if args.data is None:
        return (
            f"simulated log (make_ad_log: CTR {args.sim_ctr:.1%}, conversions {args.sim_cvr:.1%} of clicks, "
            f"{args.requests} requests)"
        )
    cols = _columns(args)
    if cols is None:
        return f"{args.data} ({args.format or 'aliexpress'})"
    named = ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in cols.items() if v is not None)
    return f"{args.data} ({named})"


def _note_inferred(caught: list[warnings.WarningMessage]) -> None:
    from ..datasets import InferredCategoricalWarning

    for w in caught:
        if isinstance(w.message, InferredCategoricalWarning):
            print(
                f"gbdt-pwiser: note: columns {w.message.columns} read as categorical (text, bool or category "
                "columns); --categorical chooses them",
                file=sys.stderr,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def read_log(args: argparse.Namespace) -> Any:
    """The log of ``--data`` (your own columns, or ``--format``; ``--nrows``), or a simulated one.

    ``--data`` is a CSV file, or Parquet: a folder of ``.parquet`` files, a
    glob of them or one file. Parquet with ``--dask-workers``/``--scheduler``
    stays on the cluster: a :class:`~gbdt_pwiser.datasets.ParquetLog` (read
    on the workers). Columns inferred as categorical are noted on stderr.
    """
    from .. import datasets
    from ..datasets.loaders import LAYOUTS
    from ..datasets.sources import list_log_files

    cols = _columns(args)
    if args.data is None:
        return datasets.make_ad_log(args.requests, ctr=args.sim_ctr, cvr=args.sim_cvr, random_state=args.seed)
    path = Path(args.data)
    layout = None if cols is not None else LAYOUTS[args.format or "aliexpress"]
    what = f"as {args.format or 'aliexpress'}" if cols is None else "with the given columns"
    try:
        files, kind = list_log_files(path)
    except FileNotFoundError as exc:  # its message repeats the path
        raise UserError(f"cannot read {path}: no such file or folder") from exc
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    if kind == "parquet" and distributed(args):
        if args.nrows is not None:
            raise UserError(
                "--nrows is not supported with a Parquet log on Dask (the workers read whole files); "
                "select the files with a glob instead"
            )
        if layout is not None:
            roles = layout.columns
            plog = datasets.ParquetLog(
                files,
                click=roles.click,
                conversion=roles.conversion,
                group=roles.group,
                features=roles.features,
                categorical=roles.categorical,
                types=layout.types(),
            )
        else:
            plog = datasets.ParquetLog(files, **(cols or {}))
        plog.check_schema(files[0], plog.columns(files))  # a misspelt column: before any cluster starts
        return plog
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if layout is None:
                log = datasets.load_log(files, **(cols or {}), nrows=args.nrows)
            elif kind == "parquet":
                log = datasets.load_parquet_log(path, args.format or "aliexpress", nrows=args.nrows)
            elif path.is_dir() or len(files) != 1:
                raise UserError(
                    f"cannot read {path} {what}: a layout's CSV log is one file (a folder or glob of "
                    "CSV files needs --click/--conversion/--group)"
                )
            else:
                loader = datasets.load_ali_ccp if args.format == "ali-ccp" else datasets.load_aliexpress
                log = loader(path, nrows=args.nrows)
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"cannot load {path} {what}: {exc}") from exc
    _note_inferred(caught)
    return log


def estimator_params(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """The estimator parameters of the command line's options; ``overrides`` replace some."""
    from ._output import on_terminal

    params = dict(
        backend=args.backend,
        margin_click_only=args.margin_click_only,
        margin_no_click=args.margin_no_click,
        pair_loss=args.pair_loss,
        pairs=args.pairs,
        cvr_space=args.cvr_space,
        n_jobs=args.n_jobs,
        verbose=on_terminal(args.quiet),  # bars over the boosting rounds, on a terminal only
    )
    for name in ("n_estimators", "learning_rate", "max_depth"):
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    return {**params, **overrides}


def make_model(args: argparse.Namespace, lam: float, **overrides: Any) -> Any:
    """The GBDT chain of the command line's options with ``lam`` (``random_state`` the ``--seed``).

    A :class:`~gbdt_pwiser.dask.DaskCTCVRClassifier` with ``--dask-workers``/``--scheduler``.
    """
    if distributed(args):
        from ..dask import DaskCTCVRClassifier as cls
    else:
        from ..sklearn import CTCVRClassifier as cls
    return cls(**estimator_params(args, lam=lam, random_state=args.seed, **overrides))


def _close_cluster(cluster: Any) -> None:
    """Close the local cluster once, here: a Ctrl-C can interrupt a worker's (re)start, and closing a cluster
    whose worker is still in status ``init`` fails on distributed's assertion; the workers' processes end
    with the command either way, so that failure is not reported again by distributed's exit hook (which
    printed its traceback after the one-line 'interrupted')."""
    from distributed.core import Status

    try:
        cluster.close(timeout=10)
    except (AssertionError, TimeoutError):
        pass
    finally:
        cluster.status = Status.closed


@contextlib.contextmanager
def dask_client(args: argparse.Namespace) -> Any:
    """A ``distributed.Client`` of ``--scheduler``, or of a local cluster of ``--dask-workers`` processes."""
    import logging

    try:
        import distributed

        import gbdt_pwiser.dask  # noqa: F401  (the dask extra)
    except ImportError as exc:
        raise UserError(
            f"--dask-workers/--scheduler need the dask extra (pip install 'gbdt-pwiser[dask]'): {exc}"
        ) from exc
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
        # the workers ignore Ctrl-C (it reaches the terminal's whole process group): the command handles it,
        # also while the cluster starts (what had started is closed here, not by distributed's exit hook)
        from distributed.deploy.spec import SpecCluster

        before = set(getattr(SpecCluster, "_instances", ()))
        cluster = None
        try:
            try:
                cluster = distributed.LocalCluster(
                    n_workers=args.dask_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=quiet,
                    # no dashboard; its HTTP server on a free port (not 8787, maybe taken)
                    scheduler_kwargs={"dashboard_address": ":0"},
                    preload=["gbdt_pwiser.cli._dask_worker"],
                )
            except BaseException:
                for started in set(getattr(SpecCluster, "_instances", ())) - before:
                    _close_cluster(started)
                raise
            with distributed.Client(cluster) as client:
                yield client
        finally:
            if cluster is not None:
                _close_cluster(cluster)
    finally:
        asyncio_log.setLevel(previous)
