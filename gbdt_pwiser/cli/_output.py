"""What the commands show: progress bars (only on a terminal) and the compare table (the plots are the evaluation
layer's figures, :mod:`gbdt_pwiser.evaluation.plots`)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from .._optional import MissingOptionalDependency, require

__all__ = ["check_writable", "progress", "on_terminal", "format_compare_table", "format_interval", "plots_available"]

#: Rows of the compare table, in order, and the decimals each is printed with.
TABLE_ROWS = {
    "ctr_auc": 4,
    "ctr_conv_auc": 4,
    "cvr_auc": 4,
    "ctcvr_auc": 4,
    "ctr_gauc": 4,
    "ctcvr_gauc": 4,
    "ctr_logloss": 4,
    "ctcvr_logloss": 4,
    "ctr_ratio": 3,
    "ctcvr_ratio": 3,
    "ctr_ece": 5,
    "ctcvr_ece": 6,
    "fit_s": 2,
}


def check_writable(folder: Path, names: list[str]) -> None:
    """Create ``folder`` and check that the files ``names`` can be written there, before any work.

    An ``OSError`` naming the path otherwise (a folder where a file goes, a
    read-only file or folder), so a run never fails after all its fitting.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the output folder {folder}: {exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write to the output folder {folder}: permission denied")
    for name in names:
        path = folder / name
        if path.is_dir():
            raise IsADirectoryError(f"cannot write {path}: it is a folder")
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(f"cannot write {path}: permission denied")


def on_terminal(quiet: bool, stream: Any = None) -> bool:
    """Whether progress bars should be drawn: not ``--quiet`` and ``stream`` (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return not quiet and bool(getattr(stream, "isatty", lambda: False)())


def progress(quiet: bool, stream: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar on stderr that draws only on a terminal (tqdm's ``disable=None``) and never with ``--quiet``.

    In a CI log or a pipe a bar would print hundreds of escape-code lines.
    """
    from tqdm.auto import tqdm

    return tqdm(
        disable=True if quiet else None, file=sys.stderr if stream is None else stream, dynamic_ncols=True, **kwargs
    )


def format_interval(ci: dict[str, float] | None, decimals: int = 4) -> str:
    """``+0.0123 [-0.0040, +0.0290]`` (difference and interval), or ``+0.0123`` without an interval."""
    if ci is None:
        return ""
    delta = "nan" if not math.isfinite(ci["delta"]) else f"{ci['delta']:+.{decimals}f}"
    if "low" not in ci:
        return delta
    if not (math.isfinite(ci["low"]) and math.isfinite(ci["high"])):
        return f"{delta} [n/a]"
    return f"{delta} [{ci['low']:+.{decimals}f}, {ci['high']:+.{decimals}f}]"


def _short(name: str) -> str:
    """``PWiseR (λ=1)`` -> ``PWiseR``: a model's name without its knob (the difference columns' headers)."""
    return name.split(" (")[0]


def format_compare_table(
    results: dict[str, dict[str, float]],
    differences: dict[str, dict[str, dict[str, float]]],
    baseline: str,
    confidence: float | None,
) -> str:
    """The compare table: one row per metric, a column per model and one per difference model − baseline.

    ``differences`` maps a model to ``{metric: {"delta", "low", "high"}}``
    (bootstrap) or ``{metric: {"delta"}}``; ``confidence`` names the interval
    in the header (None: no bootstrap).
    """
    from ..metrics import METRIC_LABELS

    names = list(results)
    others = [n for n in names if n != baseline and n in differences]
    labels = {**METRIC_LABELS, "fit_s": "fit time (s)"}
    width = max(len(labels[k]) for k in TABLE_ROWS)
    col = max(14, *(len(n) for n in names))
    ci = "" if confidence is None else f" [{confidence:.0%} CI]"
    heads = [f"{_short(n)} − {baseline}{ci}" for n in others]
    cells = {
        n: {k: format_interval(differences[n].get(k), TABLE_ROWS[k]) if k != "fit_s" else "" for k in TABLE_ROWS}
        for n in others
    }
    dws = [max(len(h), *(len(c) for c in cells[n].values())) for h, n in zip(heads, others, strict=True)]
    head = (
        f"| {'metric'.ljust(width)} | "
        + " | ".join(n.rjust(col) for n in names)
        + " | "
        + " | ".join(h.ljust(w) for h, w in zip(heads, dws, strict=True))
        + " |"
    )
    sep = (
        "|"
        + "-" * (width + 2)
        + "|"
        + "|".join("-" * (col + 2) for _ in names)
        + "|"
        + "|".join("-" * (w + 2) for w in dws)
        + "|"
    )
    lines = [head, sep]
    for k, dec in TABLE_ROWS.items():
        vals = [f"{results[n].get(k, float('nan')):.{dec}f}".rjust(col) for n in names]
        diff = [cells[n][k].ljust(w) for n, w in zip(others, dws, strict=True)]
        lines.append(f"| {labels[k].ljust(width)} | " + " | ".join(vals) + " | " + " | ".join(diff) + " |")
    return "\n".join(lines)


def plots_available(stream: Any = None) -> bool:
    """Whether matplotlib (the ``cli`` extra) is installed; if not, say in one line that the plots are skipped."""
    try:
        require("matplotlib", extra="cli", feature="drawing the plots")
    except MissingOptionalDependency as exc:
        print(f"gbdt-pwiser: note: plots skipped: {exc}", file=sys.stderr if stream is None else stream)
        return False
    return True
