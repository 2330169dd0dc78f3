"""The stages every command shares: load or simulate the log, split it by group, build the GBDT chain."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["UserError", "load_log", "split_log", "make_model"]


class UserError(Exception):
    """A problem with the user's input: reported in one line, without a traceback."""


def load_log(args: argparse.Namespace) -> Any:
    """The ``AdLog`` of ``--data``/``--format``/``--nrows``, or a simulated one of ``--requests`` requests."""
    from .. import datasets

    if args.data is None:
        return datasets.make_ad_log(args.requests, random_state=args.seed)
    path = Path(args.data)
    if not path.exists():
        raise UserError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise UserError(f"cannot read {path}: it is a folder, give a CSV file")
    loader = datasets.load_aliexpress if args.format == "aliexpress" else datasets.load_ali_ccp
    try:
        return loader(path, nrows=args.nrows)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot load {path} as {args.format}: {exc}") from exc


def split_log(log: Any, test_size: float, seed: int) -> tuple[Any, Any]:
    """Train and test parts with no group in both; the test categories aligned to the training ones."""
    from ..datasets import train_test_split_by_group

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
    return CTCVRClassifier(**{**params, **overrides})
