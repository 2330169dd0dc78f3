"""What a test part can support: its counts, the pairs PWiseR has, and a warning when a verdict is out of reach."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pair_counts", "support_warning", "test_counts"]


def pair_counts(y: np.ndarray, group: np.ndarray) -> dict[str, float]:
    """The pairs PWiseR has: per group conversion × click-only and conversion × non-click pairs.

    Returns totals, the number of groups, the share of groups holding any pair
    and the mean number of click-only partners per conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.evaluation import pair_counts
    >>> c = pair_counts(np.array([2, 1, 0, 0, 1, 0]), np.array([0, 0, 0, 1, 1, 1]))
    >>> c["pairs_click_only"], c["pairs_no_click"], c["share_groups_with_pairs"]
    (1, 1, 0.5)
    """
    y = np.asarray(y)
    _, codes = np.unique(np.asarray(group), return_inverse=True)
    k = int(codes.max()) + 1 if codes.size else 0
    conv = np.bincount(codes, weights=(y == 2), minlength=k)
    click_only = np.bincount(codes, weights=(y == 1), minlength=k)
    no_click = np.bincount(codes, weights=(y == 0), minlength=k)
    p1, p2 = conv * click_only, conv * no_click
    n_conv = float(conv.sum())
    return {
        "groups": k,
        "conversions": int(n_conv),
        "pairs_click_only": int(p1.sum()),
        "pairs_no_click": int(p2.sum()),
        "share_groups_with_pairs": float(np.mean((p1 + p2) > 0)) if k else 0.0,
        "click_only_partners_per_conversion": float(p1.sum() / n_conv) if n_conv else 0.0,
    }


def support_warning(counts: dict[str, float], min_conversions: int = 100, min_partners: float = 0.5) -> str | None:
    """One line when the test data cannot support a verdict on PWiseR (from :func:`pair_counts`), else None.

    Examples
    --------
    >>> from gbdt_pwiser.evaluation import support_warning
    >>> support_warning({"conversions": 54, "click_only_partners_per_conversion": 1.2})
    'only 54 test conversions (< 100): differences of conversion AUCs are mostly noise here'
    """
    if counts["conversions"] < min_conversions:
        return (
            f"only {counts['conversions']} test conversions (< {min_conversions}): differences of conversion "
            "AUCs are mostly noise here"
        )
    if counts["click_only_partners_per_conversion"] < min_partners:
        return (
            f"only {counts['click_only_partners_per_conversion']:.2f} click-only partners per conversion: "
            "PWiseR's conversion-vs-click-only term has little to work on"
        )
    return None


def test_counts(test: Any) -> dict[str, int]:
    """Rows, clicks, conversions, groups and groups holding a conversion of a test part (an ``AdLog``)."""
    conv_groups = np.unique(test.group[test.y == 2])
    return {
        "test_rows": len(test),
        "test_clicks": int(np.count_nonzero(test.y >= 1)),
        "test_conversions": int(np.count_nonzero(test.y == 2)),
        "test_groups": int(test.n_groups),
        "test_groups_with_conversion": int(conv_groups.size),
    }


test_counts.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever pytest's name rules say
