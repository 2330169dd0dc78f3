"""Command line: ``gbdt-pwiser compare`` (the main job) and ``gbdt-pwiser bench-neural``.

Layout: ``_options`` declares every shared option once, ``_output`` draws
tables and progress bars, ``_data`` holds the stages the commands share
(read or simulate the log, the estimators' settings, a Dask client),
``_evidence`` prints the evidence run, and each command has its module
(``compare``, ``bench_neural``). The work itself is the library's: ``compare``
calls :func:`gbdt_pwiser.evaluation.run_comparison` (splitting, fitting,
metrics, bootstrap intervals and plots).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._optional import MissingOptionalDependency
from . import bench_neural, compare
from ._data import UserError

__all__ = ["main", "build_parser", "UserError"]


def build_parser() -> argparse.ArgumentParser:
    """The ``gbdt-pwiser`` parser with its subcommands."""
    from .. import __version__

    p = argparse.ArgumentParser(prog="gbdt-pwiser", description="BCE + λ·PWiseR for gradient-boosted trees.")
    p.add_argument("--version", action="version", version=f"gbdt-pwiser {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    compare.add_parser(sub)
    bench_neural.add_parser(sub)
    return p


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an error's message (the boosters append stack traces)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gbdt-pwiser`` and ``python -m gbdt_pwiser``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"compare": compare.run, "bench-neural": bench_neural.run}
    try:
        commands[args.command](args)
        return 0
    except (UserError, MissingOptionalDependency, ValueError, TypeError, OSError) as exc:
        # Bad input on any path (in memory, out of core, on Dask workers) reaches here as the library's
        # ValueError/TypeError naming the file, column or group, as an OSError of the files, or as a
        # missing optional dependency naming its extra: one line, exit status 2; --debug shows the traceback.
        if getattr(args, "debug", False):
            raise
        print(f"gbdt-pwiser: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gbdt-pwiser: interrupted", file=sys.stderr)
        return 130
