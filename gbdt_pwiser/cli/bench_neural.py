"""``gbdt-pwiser bench-neural``: the neural multi-task baselines against the boosted chain."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..evaluation.data import split
from ..neural.bench import (
    DEFAULTS,
    LOSSES,
    MODEL_ALIASES,
    MODEL_NAMES,
    NEURAL_MODELS,
    QUICK,
    BenchError,
    require_torch,
    resolve_settings,
    run_bench,
)
from ._data import UserError, make_model, read_log
from ._options import (
    add_data_options,
    add_pwiser_options,
    add_run_options,
    add_tree_options,
    integer,
    name_list,
    real,
)
from ._output import check_writable

__all__ = ["DESCRIPTION", "add_parser", "run"]

DESCRIPTION = (
    "Neural multi-task baselines (SharedBottom, ESMM, MMoE, PLE) against the boosted CTR/CVR chain, "
    "each trained with BCE and with BCE + lambda * PWiseR on the same split by group, evaluated on the "
    "same held-out groups. Prints one table (AUC of pCTR, pCVR and pCTCVR, CTR GAUC, conversion AUC of "
    "pCTR, training time) and writes neural_bench.md and neural_bench.json to --out. The neural models "
    "need the torch extra (pip install gbdt-pwiser[torch])."
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``bench-neural`` subcommand to ``sub`` (the result of ``add_subparsers``).

    Size options default to None and are resolved by ``resolve_settings``
    from ``DEFAULTS``, or from ``QUICK`` with ``--quick``; an explicit value
    always wins.
    """
    p = sub.add_parser(
        "bench-neural",
        description=DESCRIPTION,
        help="neural multi-task baselines vs the boosted chain, each with BCE and with PWiseR",
    )
    add_data_options(
        p,
        requests=None,
        requests_help=f"default {DEFAULTS['requests']}, about {DEFAULTS['requests'] * 25 // 1000}k "
        f"exposures; --quick: {QUICK['requests']}",
    )
    s = p.add_argument_group("what to train")
    s.add_argument(
        "--models",
        type=name_list(MODEL_NAMES, MODEL_ALIASES, "model"),
        default=list(MODEL_NAMES),
        help=f"comma-separated subset of {','.join(MODEL_NAMES)} (default: all)",
    )
    s.add_argument(
        "--losses",
        type=name_list(LOSSES, {k: k for k in LOSSES}, "loss"),
        default=list(LOSSES),
        help="comma-separated subset of bce,pwiser (default: both)",
    )
    s.add_argument(
        "--quick",
        action="store_true",
        help="tiny run for a smoke test (about 25k exposures, 1 epoch, small networks, 20 trees)",
    )
    add_pwiser_options(p.add_argument_group("PWiseR"), lam_help="λ of the PWiseR rows")
    n = p.add_argument_group("neural models")
    n.add_argument(
        "--epochs",
        type=integer(lo=1),
        default=None,
        help=f"training epochs (default {DEFAULTS['epochs']}; --quick: {QUICK['epochs']})",
    )
    n.add_argument(
        "--batch-size",
        type=integer(lo=1),
        default=None,
        help=f"rows per batch, whole groups (default {DEFAULTS['batch_size']})",
    )
    n.add_argument(
        "--lr", type=real(lo=0.0, lo_open=True), default=None, help=f"Adam learning rate (default {DEFAULTS['lr']:g})"
    )
    n.add_argument(
        "--embedding-dim",
        type=integer(lo=1),
        default=None,
        help=f"embedding size (default {DEFAULTS['embedding_dim']})",
    )
    add_tree_options(p.add_argument_group("boosted chain"), defaults=DEFAULTS, resolved=False)
    o = p.add_argument_group("run and output")
    o.add_argument(
        "--torch-threads",
        type=integer(lo=1),
        default=1,
        help="PyTorch threads while training the networks (default 1: these small networks gain "
        "little from more, and spinning threads slow down ten-fold on a busy machine)",
    )
    add_run_options(o, out="neural_bench_out")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``bench-neural`` with parsed options: load and split the log, then ``neural.bench.run_bench``."""
    t0 = time.perf_counter()
    cfg = resolve_settings(args)
    try:
        if any(m in NEURAL_MODELS for m in args.models):
            require_torch()  # before any work
        check_writable(Path(args.out), ["neural_bench.json", "neural_bench.md"])
        if args.requests is None:
            args.requests = cfg["requests"]
        log = read_log(args)
        train, test, _ = split(log, args.test_size, args.seed)

        def make_gbdt(lam: float) -> Any:
            return make_model(
                args,
                lam,
                n_estimators=cfg["n_estimators"],
                learning_rate=cfg["learning_rate"],
                max_depth=cfg["max_depth"],
                verbose=False,
            )

        return run_bench(args, log, train, test, make_gbdt, t_start=t0)
    except BenchError as exc:
        raise UserError(str(exc)) from exc
