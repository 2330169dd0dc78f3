"""The paired group bootstrap of AUC differences, against a naive loop that copies every resample."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gbdt_pwiser._bootstrap import group_bootstrap_draws, paired_auc_difference, weighted_auc


def _data(seed=0, n_groups=25):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, n_groups)
    group = np.repeat(rng.permutation(1000)[:n_groups], sizes)  # arbitrary ids, contiguous
    n = group.size
    y = rng.random(n) < 0.35
    a = np.round(y + rng.normal(0, 1, n), 1)  # rounded: ties within and across classes
    b = np.round(rng.normal(0, 1, n), 1)
    return y, a, b, group


def _naive(y, a, b, group, rows, n_resamples, seed, confidence=0.95):
    uniq = list(dict.fromkeys(group.tolist()))  # first appearance, as group_codes
    members = [np.flatnonzero(group == g) for g in uniq]
    draws = np.random.default_rng(seed).integers(0, len(uniq), size=(n_resamples, len(uniq)))
    diffs = []
    for d in draws:
        idx = np.concatenate([members[g] for g in d])
        idx = idx[rows[idx]]
        if y[idx].all() or not y[idx].any():
            continue
        diffs.append(roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]))
    tail = 50 * (1 - confidence)
    return np.percentile(diffs, [tail, 100 - tail]), len(diffs)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_a_naive_loop_over_materialised_resamples(seed, masked):
    y, a, b, group = _data(seed)
    rows = (np.arange(y.size) % 3 != 0) if masked else np.ones(y.size, dtype=bool)
    res = paired_auc_difference(y, a, b, group, rows=rows if masked else None, n_resamples=60, random_state=seed)
    (low, high), n_valid = _naive(y, a, b, group, rows, 60, seed)
    assert res["n_valid"] == n_valid
    assert res["low"] == pytest.approx(low, abs=1e-12) and res["high"] == pytest.approx(high, abs=1e-12)
    delta = roc_auc_score(y[rows], a[rows]) - roc_auc_score(y[rows], b[rows])
    assert res["delta"] == pytest.approx(delta, abs=1e-12)


def test_weighted_auc_is_the_auc_of_repeated_rows():
    y, a, _, _ = _data(3)
    w = np.random.default_rng(0).integers(0, 4, size=(5, y.size))
    got = weighted_auc(y, a, w)
    for k in range(5):
        rep = np.repeat(np.arange(y.size), w[k])
        assert got[k] == pytest.approx(roc_auc_score(y[rep], a[rep]), abs=1e-12)
    assert np.isnan(weighted_auc(np.zeros(4), np.arange(4), np.ones((1, 4)))[0])


def test_deterministic_and_seed_dependent():
    y, a, b, group = _data(4)
    r1 = paired_auc_difference(y, a, b, group, n_resamples=50, random_state=5)
    r2 = paired_auc_difference(y, a, b, group, n_resamples=50, random_state=5)
    r3 = paired_auc_difference(y, a, b, group, n_resamples=50, random_state=6)
    assert r1 == r2 and (r1["low"], r1["high"]) != (r3["low"], r3["high"])
    np.testing.assert_array_equal(group_bootstrap_draws(7, 3, 1), group_bootstrap_draws(7, 3, 1))


def test_blocking_does_not_change_the_result(monkeypatch):
    import gbdt_pwiser._bootstrap as bs

    y, a, b, group = _data(5)
    full = paired_auc_difference(y, a, b, group, n_resamples=40, random_state=0)
    monkeypatch.setattr(bs, "_BLOCK_CELLS", 1)  # one resample at a time
    assert paired_auc_difference(y, a, b, group, n_resamples=40, random_state=0) == full


def test_bad_input():
    y, a, b, group = _data(6)
    with pytest.raises(ValueError, match="rows"):
        paired_auc_difference(y, a[:-1], b, group)
    with pytest.raises(ValueError, match="confidence"):
        paired_auc_difference(y, a, b, group, confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        paired_auc_difference(y, a, b, group, n_resamples=0)
