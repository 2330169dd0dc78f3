"""The evaluation layer's Python API (gbdt_pwiser.compare, run_comparison) and the calibration metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import gbdt_pwiser
from gbdt_pwiser.datasets import ParquetLog, make_ad_log
from gbdt_pwiser.evaluation import Model, models, run_comparison
from gbdt_pwiser.metrics import calibration_ratio, evaluate_predictions, expected_calibration_error, reliability_curve

PARAMS = {"n_estimators": 5, "max_depth": 3, "n_jobs": 1}


@pytest.fixture(scope="module")
def log():
    return make_ad_log(300, ctr=0.1, cvr=0.2, n_categorical=2, n_numerical=3, random_state=0)


@pytest.fixture(scope="module")
def result(log):
    return run_comparison(log, ["bce", "pwiser", "weighted"], seeds=[0, 1], params=PARAMS, bootstrap=30)


def test_compare_returns_one_row_per_model_and_seed_with_differences(log, tmp_path):
    table = gbdt_pwiser.compare(
        log,
        ["bce", "pwiser", "weighted"],
        seeds=[0, 1],
        lam=[1.0, 2.0],
        conversion_weight=1.0,
        params=PARAMS,
        bootstrap=30,
        plots=tmp_path,
    )
    assert isinstance(table, pd.DataFrame)
    names = ["BCE", "PWiseR (λ=1)", "PWiseR (λ=2)", "weighted BCE (α=1)"]
    assert table["model"].tolist() == names * 2 and table["seed"].tolist() == [0] * 4 + [1] * 4
    for k in ("ctr_auc", "ctcvr_auc", "ctr_ratio", "ctcvr_ratio", "ctr_ece", "ctcvr_ece", "fit_s"):
        assert table[k].notna().all(), k
    base = table[table["model"] == "BCE"].set_index("seed")
    for _, row in table[table["model"] != "BCE"].iterrows():
        assert row["ctr_auc_delta"] == pytest.approx(row["ctr_auc"] - base.loc[row["seed"], "ctr_auc"], abs=1e-12)
        assert row["ctr_auc_low"] <= row["ctr_auc_high"]
    assert table[table["model"] == "BCE"]["ctr_auc_delta"].isna().all()
    for png in ("roc.png", "calibration.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_weighted_uses_the_estimator_conversion_weight(log):
    m = Model("weighted", 2.0)
    assert m.params() == {"lam": 0.0, "conversion_weight": 2.0} and m.name == "weighted BCE (α=2)"
    assert Model("weighted", 0.0).key == Model("bce").key == Model("pwiser", 0.0).key  # one BCE fit


def test_the_same_seed_gives_the_same_table(log, result):
    again = run_comparison(log, ["bce", "pwiser", "weighted"], seeds=[0, 1], params=PARAMS, bootstrap=30)
    pd.testing.assert_frame_equal(result.table.drop(columns="fit_s"), again.table.drop(columns="fit_s"))
    pd.testing.assert_frame_equal(result.differences, again.differences)


def test_comparison_figures_and_summary(result):
    figs = result.figures()
    assert {"roc.png", "calibration.png", "tradeoff_conversion.png", "tradeoff_ctcvr.png"} <= set(figs)
    assert set(result.figures(names=["calibration.png"])) == {"calibration.png"}
    s = result.summary()
    assert (s["n_seeds"] == 2).all() and s["ctr_auc_sd"].notna().all()
    assert result.error_bars() == "SD over seeds 0,1"


def test_the_table_metrics_are_evaluate_predictions_of_the_test_part(result):
    seed = 1
    test = result.tests[seed]
    pred = result.predictions[seed]["PWiseR (λ=1)"]
    expected = evaluate_predictions(test.y, pred["p_ctr"], pred["p_cvr"], test.group)
    got = result.results(seed)["PWiseR (λ=1)"]
    for k, v in expected.items():
        np.testing.assert_equal(got[k], v)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"methods": ["bce", "magic"]}, ValueError, "unknown methods ['magic']"),
        ({"methods": "bce"}, ValueError, "methods must be a non-empty list"),
        ({"methods": []}, ValueError, "methods must be a non-empty list"),
        ({"seeds": []}, ValueError, "seeds must be a non-empty list"),
        ({"seeds": [-1]}, ValueError, "seed"),
        ({"test_size": 1.0}, ValueError, "test_size"),
        ({"bootstrap": -1}, ValueError, "bootstrap"),
        ({"confidence": 1.5}, ValueError, "confidence"),
        ({"lam": -1.0}, ValueError, "lam"),
        ({"conversion_weight": [1.0, float("nan")]}, ValueError, "conversion_weight"),
        ({"conversion_weight": []}, ValueError, "conversion_weight is empty"),
        ({"calibration": "platt"}, ValueError, "calibration must be None"),
        ({"params": [1]}, TypeError, "params must be a dict"),
        ({"params": {"n_trees": 3}}, TypeError, "n_trees"),
        ({"baseline": "nope"}, ValueError, "the baseline 'nope' is not among the models"),
    ],
)
def test_bad_arguments(log, kwargs, error, message):
    with pytest.raises(error, match=None) as e:
        gbdt_pwiser.compare(log, **{"params": PARAMS, "bootstrap": 0, **kwargs})
    assert message in str(e.value)


def test_bad_logs(tmp_path):
    with pytest.raises(TypeError, match="log must be an AdLog"):
        gbdt_pwiser.compare(pd.DataFrame({"a": [1]}), params=PARAMS)
    with pytest.raises(ValueError, match="too few groups"):
        gbdt_pwiser.compare(make_ad_log(3, random_state=0), params=PARAMS)
    pd.DataFrame({"q": [1, 1], "c": [1, 0], "v": [0, 0], "x": [0.1, 0.2]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="a ParquetLog is compared on a Dask cluster"):
        gbdt_pwiser.compare(ParquetLog(tmp_path, click="c", conversion="v", group="q"), params=PARAMS)
    no_conv = make_ad_log(200, random_state=0)
    no_conv.y[no_conv.y == 2] = 1
    with pytest.raises(ValueError, match="the training part has no conversions"):
        gbdt_pwiser.compare(no_conv, params=PARAMS)


def test_models_of_methods():
    assert [m.name for m in models(["pwiser", "bce"], lam=[0.0, 1.0])] == ["BCE", "PWiseR (λ=1)", "BCE"]
    assert [m.name for m in models(["shared", "ranker"], lam=2)] == ["shared (λ=2)", "ranker"]


# ---------------------------------------------------------------- calibration metrics against naive references
def _naive_bins(y, p, w, n_bins):
    """Rows sorted by prediction, cut where the weight before a row crosses k/n_bins of the total."""
    order = np.argsort(p, kind="stable")
    y, p, w = y[order], p[order], w[order]
    total, before = w.sum(), 0.0
    bins: dict[int, list[int]] = {}
    for i in range(y.size):
        b = min(int(before / total * n_bins), n_bins - 1)
        bins.setdefault(b, []).append(i)
        before += w[i]
    out = []
    for rows in bins.values():
        ww = w[rows]
        out.append((np.sum(ww * p[rows]) / ww.sum(), np.sum(ww * y[rows]) / ww.sum(), ww.sum()))
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighted", [False, True])
def test_calibration_metrics_equal_naive_loops(seed, weighted):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 300))
    p = rng.random(n) * 0.3
    y = (rng.random(n) < p * 1.4).astype(float)
    w = rng.random(n) + 0.2 if weighted else np.ones(n)
    n_bins = int(rng.integers(1, 12))
    naive = _naive_bins(y, p, w, n_bins)
    mean_p, rate, ws = reliability_curve(y, p, n_bins, sample_weight=w if weighted else None)
    np.testing.assert_allclose(mean_p, [b[0] for b in naive], rtol=1e-12)
    np.testing.assert_allclose(rate, [b[1] for b in naive], rtol=1e-12)
    np.testing.assert_allclose(ws, [b[2] for b in naive], rtol=1e-12)
    ece = sum(b[2] * abs(b[0] - b[1]) for b in naive) / sum(b[2] for b in naive)
    assert expected_calibration_error(y, p, n_bins, sample_weight=w if weighted else None) == pytest.approx(ece)
    if y.any():
        assert calibration_ratio(y, p, w if weighted else None) == pytest.approx(np.sum(w * p) / np.sum(w * y))


def test_calibration_metrics_of_a_calibrated_and_a_doubled_model():
    rng = np.random.default_rng(0)
    p = rng.random(200_000) * 0.1
    y = (rng.random(p.size) < p).astype(int)
    assert calibration_ratio(y, p) == pytest.approx(1.0, abs=0.02)
    assert calibration_ratio(y, 2 * p) == pytest.approx(2.0, abs=0.04)
    assert expected_calibration_error(y, p) < 0.002 < expected_calibration_error(y, 2 * p)


def test_calibration_metric_bad_inputs():
    assert np.isnan(calibration_ratio([0, 0], [0.1, 0.2]))  # no positive
    with pytest.raises(ValueError, match="prob has 2 rows but y_true has 3"):
        calibration_ratio([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="prob has 2 rows but y_true has 3"):
        reliability_curve([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0, 1], [0.1, 0.2], n_bins=0)
    with pytest.raises(ValueError, match="sample_weight"):
        reliability_curve([0, 1], [0.1, 0.2], sample_weight=[1.0, -1.0])
