"""The command-line arguments of each example when the documentation build runs it (sphinx-gallery).

The scripts of ``examples/`` take arguments; the gallery runs them in the build's
process with the arguments below (small, documented sizes), and the page shows that
run's output. A script not listed runs with none (its defaults).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: the shared AliExpress sample beside the checkout, where the tests read it too
SAMPLE = ROOT.parent / "shared" / "data" / "aliexpress_sample"


def example_argv(gallery_conf: dict[str, Any], script_vars: dict[str, Any]) -> list[str]:
    """``sys.argv[1:]`` of the example ``script_vars["src_file"]``."""
    name = Path(script_vars["src_file"]).name
    if name == "own_log_compare.py":
        return ["--small", "--out", tempfile.mkdtemp(prefix="gbdt_gallery_")]  # its plots stay out of the tree
    if name == "sklearn_grid_search.py":
        return ["--small", "--n-jobs", "1"]  # tiny fits: one thread each is faster than two
    if name == "aliexpress_sample_estimator.py":
        return [
            "--train",
            str(SAMPLE / "aliexpress_train_sample.csv"),
            "--test",
            str(SAMPLE / "aliexpress_test_sample.csv"),
            "--n-estimators",
            "5",
        ]
    return []


#: the gallery's order (the objectives, then the estimator); a script not listed comes after, by name
ORDER = [
    "quickstart_xgboost.py",
    "quickstart_lightgbm.py",
    "sklearn_grid_search.py",
    "own_log_compare.py",
    "aliexpress_sample_estimator.py",
]


class ExampleOrder:
    """sphinx-gallery's ``within_subsection_order``: the examples in :data:`ORDER`."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self) -> str:
        return "<ExampleOrder>"
