"""DaskCTCVRClassifier early stopping on a LocalCluster (2 process workers x 1 thread).

The eval AUC XGBoost reports on the cluster must be the single-process AUC of the same
predictions, and the round early stopping keeps must be the one a driver-side computation
of the metric over the rounds picks (same patience rule as CTCVRClassifier).
"""

from __future__ import annotations

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")
pytest.importorskip("lightgbm.dask")

import xgboost as xgb  # noqa: E402
from _dask_helpers import dask_model  # noqa: E402

from gbdt_pwiser.datasets import make_ad_log  # noqa: E402
from gbdt_pwiser.engines import Stopper  # noqa: E402
from gbdt_pwiser.metrics import click_auc, clicked_conversion_auc, conversion_auc  # noqa: E402

PARAMS = {"n_estimators": 40, "max_depth": 4, "learning_rate": 0.5, "n_jobs": 1, "lam": 1.0}


@pytest.fixture(scope="module")
def log():
    def frame(n, seed):
        lg = make_ad_log(n, random_state=seed)
        X = lg.X.apply(lambda c: c.cat.codes if hasattr(c, "cat") else c).astype(np.float64)
        X.columns = [f"f{i}" for i in range(X.shape[1])]
        return X.assign(y=np.asarray(lg.y, dtype=np.int8), g=np.asarray(lg.group))

    train, valid = frame(250, 0), frame(120, 1)
    return train, valid, [c for c in train.columns if c.startswith("f")]


def _driver_best(booster, X, score, rounds):
    """The metric of every round from the final booster's predictions, and the round Stopper keeps."""
    dm = xgb.DMatrix(X)
    scores = [
        score(booster.predict(dm, iteration_range=(0, k + 1), output_margin=True))
        for k in range(booster.num_boosted_rounds())
    ]
    stopper = Stopper(rounds)
    for k, s in enumerate(scores):
        if stopper.update(k, s):
            break
    return np.array(scores), stopper.best_iteration


@pytest.mark.parametrize("metric", ["auc_click", "auc_conv"])
def test_early_stopping_matches_driver_side_metric(client, log, metric):
    train, valid, feats = log
    ddf = dd.from_pandas(train, npartitions=4, sort=False)
    dval = dd.from_pandas(valid, npartitions=3, sort=False)  # spread: fit gathers it on one worker
    es = 3
    model = dask_model(client, early_stopping_rounds=es, ctr_stopping_metric=metric, **PARAMS)
    model.fit(ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(dval[feats], dval["y"])])
    yv = valid["y"].to_numpy()
    ctr_score = (lambda z: click_auc(z, yv)) if metric == "auc_click" else (lambda z: conversion_auc(z, yv))
    for which, X, score, name in (
        ("ctr", valid[feats], ctr_score, metric),
        ("cvr", valid[feats][yv >= 1], lambda u: clicked_conversion_auc(u, yv[yv >= 1]), "auc_conv"),
    ):
        booster = getattr(model, f"{which}_booster_")
        scores, best = _driver_best(booster, X, score, es)
        reported = np.array(model.evals_result_[which]["valid_0"][name])
        # the cluster's AUC is the single-process AUC of the same predictions
        np.testing.assert_allclose(reported, scores, rtol=0, atol=1e-12)
        assert getattr(model, f"best_iteration_{which}_") == best
        assert getattr(model, f"n_rounds_{which}_") == best + 1
        rounds = booster.num_boosted_rounds()
        assert rounds == min(PARAMS["n_estimators"], best + 1 + es), (which, rounds, best)
    assert model.n_rounds_ctr_ < PARAMS["n_estimators"]  # it did stop early
    # prediction uses the best round: the local model's pCTR is that of best_iteration + 1 rounds
    local = model.to_local()
    z = model.ctr_booster_.predict(
        xgb.DMatrix(valid[feats]), iteration_range=(0, model.n_rounds_ctr_), output_margin=True
    )
    np.testing.assert_allclose(local.predict_ctr(valid[feats]), 1 / (1 + np.exp(-z)), rtol=1e-6)


def test_eval_set_without_early_stopping_records_history(client, log):
    train, valid, feats = log
    ddf = dd.from_pandas(train, npartitions=2, sort=False)
    model = dask_model(client, **{**PARAMS, "n_estimators": 5})
    model.fit(ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(valid[feats], valid["y"].to_numpy())])
    assert len(model.evals_result_["ctr"]["valid_0"]["auc_click"]) == 5
    assert len(model.evals_result_["cvr"]["valid_0"]["auc_conv"]) == 5
    assert model.best_iteration_ctr_ is None and model.n_rounds_ctr_ == 5


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"backend": "lightgbm"}, NotImplementedError, "lightgbm"),
        ({"ctr_stopping_metric": "auc_click_group"}, ValueError, "exactly on Dask"),
        ({"cvr_space": "entire"}, ValueError, "cvr_space='entire'"),
    ],
)
def test_unsupported_stopping_raises_before_training(client, log, kwargs, exc, match):
    train, valid, feats = log
    ddf = dd.from_pandas(train, npartitions=2, sort=False)
    model = dask_model(client, early_stopping_rounds=2, **{**PARAMS, **kwargs})
    with pytest.raises(exc, match=match):
        model.fit(ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(valid[feats], valid["y"])])


def test_early_stopping_needs_eval_set_and_both_classes(client, log):
    train, valid, feats = log
    ddf = dd.from_pandas(train, npartitions=2, sort=False)
    with pytest.raises(ValueError, match="needs an eval_set"):
        dask_model(client, early_stopping_rounds=2, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"])
    no_click = valid[valid["y"] == 0]
    with pytest.raises(ValueError, match="only one class"):
        dask_model(client, early_stopping_rounds=2, **PARAMS).fit(
            ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(no_click[feats], no_click["y"])]
        )
    dval = dd.from_pandas(valid, npartitions=2, sort=False)
    with pytest.raises(TypeError, match="both be dask collections"):
        dask_model(client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(dval[feats], valid["y"])])
    with pytest.raises(TypeError, match="list of"):
        dask_model(client, **PARAMS).fit(ddf[feats], ddf["y"], group=ddf["g"], eval_set=(valid[feats], valid["y"]))
    with pytest.raises(ValueError, match="training columns"):
        dask_model(client, **PARAMS).fit(
            ddf[feats], ddf["y"], group=ddf["g"], eval_set=[(valid[feats[:-1]], valid["y"])]
        )
