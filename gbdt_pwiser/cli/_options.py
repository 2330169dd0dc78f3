"""Every option shared by the commands, declared once, and the argparse ``type=`` functions.

The ``type=`` functions convert the text and run the library's one check
(``_validation.check_real`` / ``check_int``); a failed check becomes an
``argparse.ArgumentTypeError``, so argparse reports it as
``argument --lam: must be a finite number >= 0, got -1.0`` and exits with 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._defaults import DEFAULT_LAM, DEFAULT_MARGIN_CLICK_ONLY, DEFAULT_MARGIN_NO_CLICK
from .._validation import PAIR_LOSSES, check_int, check_pairs, check_real

__all__ = [
    "real",
    "integer",
    "pairs",
    "real_list",
    "name_list",
    "column_list",
    "add_dask_options",
    "add_data_options",
    "add_pwiser_options",
    "add_tree_options",
    "add_run_options",
    "add_evidence_options",
]

#: Smallest simulated log the commands accept (fewer requests give no pairs to compare).
MIN_REQUESTS = 10
#: Seconds ``--scheduler`` waits for the scheduler before giving up (``--connect-timeout``).
DEFAULT_CONNECT_TIMEOUT = 10.0


def _type_error(exc: Exception) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(str(exc).removeprefix("value "))


def real(
    *, lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """A ``type=`` for a finite number in the given interval (``check_real``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return check_real(value, "value", lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)
        except (TypeError, ValueError) as exc:
            raise _type_error(exc) from None

    parse.__name__ = "number"
    return parse


def integer(*, lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """A ``type=`` for an integer in ``[lo, hi]`` (``check_int``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        try:
            return check_int(value, "value", lo=lo, hi=hi)
        except (TypeError, ValueError) as exc:
            raise _type_error(exc) from None

    parse.__name__ = "integer"
    return parse


def pairs(text: str) -> str | int:
    """``all`` (exact PWiseR) or a positive number of sampled partners (``check_pairs``)."""
    try:
        value: str | int = "all" if text == "all" else int(text)
        check_pairs(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f'must be "all" or a positive integer, got {text!r}') from None
    return value


def real_list(text: str) -> list[float]:
    """Comma-separated non-negative numbers, each through ``check_real``; empty items are skipped."""
    parse = real(lo=0.0)
    values = [parse(t.strip()) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0, got {text!r}")
    return values


def name_list(choices: Sequence[str], aliases: dict[str, str], what: str) -> Callable[[str], list[str]]:
    """A ``type=`` for a comma-separated subset of ``choices`` (returned in ``choices`` order)."""

    def parse(text: str) -> list[str]:
        out: list[str] = []
        for raw in text.split(","):
            key = raw.strip().lower().replace("-", "").replace("_", "")
            if not key:
                continue
            name = aliases.get(key)
            if name is None:
                raise argparse.ArgumentTypeError(f"unknown {what} {raw.strip()!r}; choose from {','.join(choices)}")
            if name not in out:
                out.append(name)
        if not out:
            raise argparse.ArgumentTypeError(f"give at least one of {','.join(choices)}")
        return [c for c in choices if c in out]

    parse.__name__ = f"{what} list"
    return parse


def column_list(text: str) -> list[str]:
    """Comma-separated column names (``""``: none); a name given twice is an error."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"columns {twice} are listed more than once")
    return names


column_list.__name__ = "column list"
#: Conversions among clicks of the simulated log of ``compare`` (the simulator's own default is 2.5 %): enough
#: test conversions (about 370 of ~100k test rows) for its conversion-side intervals to show an effect.
COMPARE_SIM_CVR = 0.15


def add_data_options(
    parser: argparse.ArgumentParser, *, requests: int | None, requests_help: str, sim_cvr: float = 0.025
) -> None:
    """``--data`` with ``--format`` or the columns (``--click``, ``--conversion``, ``--group``, ``--weight``,
    ``--features``, ``--categorical``), ``--requests``, ``--sim-ctr``, ``--sim-cvr``, ``--nrows``,
    ``--test-size``, ``--seed``."""
    d = parser.add_argument_group("data")
    d.add_argument(
        "--data",
        type=Path,
        help="ad log: a CSV file, or Parquet (a folder of .parquet files, a quoted glob "
        "such as 'logs/*.parquet', or one file); your own columns with --click/--conversion/--group, "
        "or a --format layout (default: simulate one); with --dask-workers/--scheduler Parquet is "
        "read on the workers",
    )
    d.add_argument(
        "--format",
        choices=["aliexpress", "ali-ccp"],
        default=None,
        help="the paper's layout of --data, instead of naming the columns (default: aliexpress)",
    )
    d.add_argument("--click", metavar="COL", help="your log's click column (0/1, bool or integers)")
    d.add_argument("--conversion", metavar="COL", help="your log's conversion column (0/1, bool or integers)")
    d.add_argument("--group", metavar="COL", help="your log's group column (search or request id)")
    d.add_argument("--weight", metavar="COL", help="a column of row weights (optional)")
    d.add_argument(
        "--features",
        type=column_list,
        metavar="A,B",
        default=None,
        help="the feature columns (default: every column but the labels, group and weight)",
    )
    d.add_argument(
        "--categorical",
        type=column_list,
        metavar="A,B",
        default=None,
        help="the categorical features (default: text, bool and category columns, reported in a note; '' for none)",
    )
    d.add_argument(
        "--requests",
        type=integer(lo=MIN_REQUESTS),
        default=requests,
        help=f"simulated requests when --data is not given, at least {MIN_REQUESTS} ({requests_help})",
    )
    d.add_argument(
        "--sim-ctr",
        type=real(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
        default=0.025,
        help="click rate of the simulated log (default 0.025)",
    )
    d.add_argument(
        "--sim-cvr",
        type=real(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
        default=sim_cvr,
        help=f"conversions among clicks of the simulated log (default {sim_cvr:g}; below 0.7, the share of "
        "clicks that are not accidental)",
    )
    d.add_argument("--nrows", type=integer(lo=1), default=None, help="read at most this many rows of --data")
    d.add_argument(
        "--test-size",
        type=real(lo=0.0, hi=1.0, lo_open=True, hi_open=True),
        default=0.2,
        help="share of groups held out, in (0, 1) (default 0.2)",
    )
    d.add_argument(
        "--seed", type=integer(lo=0), default=0, help="seed of the simulator, the split and the models (default 0)"
    )


def add_dask_options(parser: argparse.ArgumentParser) -> None:
    """``--dask-workers`` or ``--scheduler`` (with ``--connect-timeout``): train on Dask (needs the dask extra)."""
    d = parser.add_argument_group("distributed (needs the dask extra)")
    x = d.add_mutually_exclusive_group()
    x.add_argument(
        "--dask-workers",
        type=integer(lo=1),
        default=None,
        metavar="N",
        help="train with DaskCTCVRClassifier on a local cluster of N worker processes x 1 thread",
    )
    x.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="train with DaskCTCVRClassifier on the Dask scheduler at ADDRESS (e.g. tcp://host:8786); "
        "an unreachable scheduler is an error after --connect-timeout seconds",
    )
    d.add_argument(
        "--connect-timeout",
        type=real(lo=0.0, lo_open=True),
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to try to reach --scheduler (default {DEFAULT_CONNECT_TIMEOUT:g} s; "
        "distributed's own default is 30 s)",
    )


def add_pwiser_options(group: Any, *, lam_help: str) -> None:
    """``--lam``, ``--margin-click-only``, ``--margin-no-click``, ``--pair-loss``, ``--pairs``."""
    nonneg = real(lo=0.0)
    group.add_argument("--lam", type=nonneg, default=DEFAULT_LAM, help=f"{lam_help} (default {DEFAULT_LAM:g})")
    group.add_argument(
        "--margin-click-only",
        type=nonneg,
        default=DEFAULT_MARGIN_CLICK_ONLY,
        help=f"margin m1 against click-only rows (default {DEFAULT_MARGIN_CLICK_ONLY:g})",
    )
    group.add_argument(
        "--margin-no-click",
        type=nonneg,
        default=DEFAULT_MARGIN_NO_CLICK,
        help=f"margin m2 against non-clicks (default {DEFAULT_MARGIN_NO_CLICK:g})",
    )
    group.add_argument(
        "--pair-loss",
        choices=list(PAIR_LOSSES),
        default="squared_hinge",
        help="pair term: squared hinge on probabilities or logistic on logits (default squared_hinge)",
    )
    group.add_argument(
        "--pairs", type=pairs, default="all", help='"all" (exact) or k sampled partners per conversion (default all)'
    )


def add_tree_options(group: Any, *, defaults: dict[str, Any], resolved: bool) -> None:
    """``--backend``, ``--cvr-space``, ``--n-estimators``, ``--learning-rate``, ``--max-depth``, ``--n-jobs``.

    ``defaults`` gives the shown defaults of the three sizes; with
    ``resolved=False`` the options default to None and the command fills them
    in (``bench-neural --quick`` has its own sizes).
    """
    group.add_argument(
        "--backend", choices=["xgboost", "lightgbm"], default="xgboost", help="boosting library (default xgboost)"
    )
    group.add_argument(
        "--cvr-space",
        choices=["clicked", "entire"],
        default="clicked",
        help="CVR booster on the clicked rows or on all exposures (default clicked)",
    )
    sizes = (
        ("--n-estimators", "n_estimators", integer(lo=1), "trees per booster"),
        ("--learning-rate", "learning_rate", real(lo=0.0, lo_open=True), "boosting learning rate"),
        ("--max-depth", "max_depth", integer(lo=1), "tree depth"),
    )
    for flag, key, kind, what in sizes:
        group.add_argument(
            flag, type=kind, default=defaults[key] if resolved else None, help=f"{what} (default {defaults[key]:g})"
        )
    group.add_argument(
        "--n-jobs", type=integer(lo=1), default=None, help="threads of the boosting library (default: its own)"
    )


def add_run_options(group: Any, *, out: str) -> None:
    """``--out``, ``--quiet``, ``--debug``."""
    group.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default {out})")
    group.add_argument(
        "--quiet", action="store_true", help="no progress bars (they are only drawn on a terminal anyway)"
    )
    group.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _seed_list(text: str) -> list[int]:
    parse = integer(lo=0)
    values = [parse(t.strip()) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return list(dict.fromkeys(values))


_seed_list.__name__ = "seed list"
#: ``compare --methods`` names (see gbdt_pwiser.evaluation.METHODS)
EVIDENCE_METHODS = ("pwiser", "weighted", "ranker", "shared")


def add_evidence_options(group: Any) -> None:
    """``--evidence``, ``--methods``, ``--sweep-alpha``, ``--seeds`` (is PWiseR worth it on this log?)."""
    group.add_argument(
        "--evidence",
        action="store_true",
        help="also run every competitor over its knob (PWiseR chain over --sweep-lam, "
        "conversion-weighted BCE over --sweep-alpha, the boosters' ranking objective, "
        "the shared booster over --sweep-lam) and draw the trade-off plots; slow",
    )
    group.add_argument(
        "--methods",
        type=name_list(EVIDENCE_METHODS, {m: m for m in EVIDENCE_METHODS}, "method"),
        default=None,
        help="the competitors of the trade-off plots, a comma-separated subset of "
        f"{','.join(EVIDENCE_METHODS)} (implies the evidence run; default with --evidence: all)",
    )
    group.add_argument(
        "--sweep-alpha",
        type=real_list,
        default=[0.0, 1.0, 3.0],
        help="alpha values of conversion-weighted BCE, CTCVRClassifier(conversion_weight=alpha): the "
        "CTR booster weighs converted rows 1 + alpha times (default 0,1,3)",
    )
    group.add_argument(
        "--seeds",
        type=_seed_list,
        default=[0],
        help="seeds of the evidence run: each re-splits the log by group and refits; error bars "
        "are the SD over seeds, or with one seed the SD over a bootstrap of test groups "
        "(default 0)",
    )
