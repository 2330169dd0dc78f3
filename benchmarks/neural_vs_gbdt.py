"""Neural multi-task baselines (SharedBottom, ESMM, MMoE, PLE) against the boosted chain,
each trained with BCE and with BCE + λ·PWiseR, on one split by group.

A thin wrapper of ``gbdt-pwiser bench-neural`` (logic in ``gbdt_pwiser.neural.bench``);
it takes the same options and writes ``neural_bench.json`` and ``neural_bench.md``
to ``--out`` (default ``neural_bench_out/``). Needs the ``torch`` extra.

    python benchmarks/neural_vs_gbdt.py                 # simulated log, about 300k exposures (~1 min)
    python benchmarks/neural_vs_gbdt.py --quick         # tiny smoke run
    python benchmarks/neural_vs_gbdt.py --data AliExpress_NL/train.csv --format aliexpress --nrows 300000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gbdt_pwiser.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench-neural", *sys.argv[1:]]))
