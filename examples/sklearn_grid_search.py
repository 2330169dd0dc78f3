"""
Tuning λ, the margins and the conversion weight with ``GridSearchCV``
=====================================================================

Tune λ, the margins and the conversion weight of
:class:`~gbdt_pwiser.sklearn.CTCVRClassifier` with
:class:`~sklearn.model_selection.GridSearchCV` and
:class:`~sklearn.model_selection.GroupKFold`.

``conversion_weight=α`` is conversion-weighted BCE (the CTR booster weighs
converted rows ``1 + α`` times); with ``lam`` in the same grid the search
picks PWiseR, conversion weighting or both.

A scikit-learn ``Pipeline`` (drop the position feature ``numerical_1``, unknown at
serving time, then the chained CTR → CVR boosters) is cross-validated by
request: ``GroupKFold`` keeps each request's exposures in one fold, and
metadata routing sends the same request ids to the estimator, which forms its
PWiseR pairs within requests. The grid is scored by CTCVR AUC (the estimator's
``score``), with the CTR AUC and the conversion AUC of pCTR reported alongside.

Run::

    python examples/sklearn_grid_search.py                 # ~100k exposures, a few minutes
    python examples/sklearn_grid_search.py --small         # seconds (also: GBDT_PWISER_SMALL=1)
    python examples/sklearn_grid_search.py --backend lightgbm

The output below is the documentation build's run with ``--small --n-jobs 1`` (200 requests,
a grid of four, eight trees per booster, one thread): it shows the mechanics, not which λ is best.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from gbdt_pwiser import CTCVRClassifier
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.sklearn import ctcvr_auc_scorer, ctr_auc_scorer, pctr_conversion_auc_scorer

DESCRIPTION = "Tune λ and the margins of CTCVRClassifier with GridSearchCV and GroupKFold."


def main(argv: list[str] | None = None) -> GridSearchCV:
    ap = argparse.ArgumentParser(description=DESCRIPTION)
    ap.add_argument(
        "--small",
        action="store_true",
        default=os.environ.get("GBDT_PWISER_SMALL", "") not in ("", "0"),
        help="tiny data and grid (for tests)",
    )
    ap.add_argument("--backend", choices=["xgboost", "lightgbm"], default="xgboost")
    ap.add_argument("--n-jobs", type=int, default=2, help="threads per booster")
    args = ap.parse_args(argv)

    if args.small:
        log = make_ad_log(200, ctr=0.1, cvr=0.2, n_categorical=4, n_numerical=6, random_state=0)
        grid = {"model__lam": [0.0, 1.0], "model__conversion_weight": [0.0, 1.0]}
        n_estimators, n_splits = 8, 2
    else:
        log = make_ad_log(4000, random_state=0)
        grid = {
            "model__lam": [0.0, 0.5, 1.0, 2.0],
            "model__margin_click_only": [0.02, 0.1],
            "model__conversion_weight": [0.0, 1.0],
        }
        n_estimators, n_splits = 100, 3
    train, test = train_test_split_by_group(log, test_size=0.2, random_state=0)
    print(f"train: {train}\ntest:  {test}")

    with sklearn.config_context(enable_metadata_routing=True):
        model = CTCVRClassifier(
            backend=args.backend,
            n_estimators=n_estimators,
            learning_rate=0.1,
            max_depth=6,
            n_jobs=args.n_jobs,
            random_state=0,
        )
        # The request ids reach fit() as `group`, read from the `groups` that GroupKFold splits on.
        model.set_fit_request(group="groups", sample_weight=False)
        pipe = Pipeline(
            [
                (
                    "drop_position",
                    ColumnTransformer(
                        [("position", "drop", ["numerical_1"])],
                        remainder="passthrough",
                        verbose_feature_names_out=False,
                    ).set_output(transform="pandas"),
                ),
                ("model", model),
            ]
        )
        search = GridSearchCV(
            pipe,
            grid,
            cv=GroupKFold(n_splits=n_splits),
            scoring={
                "ctcvr_auc": ctcvr_auc_scorer,
                "ctr_auc": ctr_auc_scorer,
                "pctr_conversion_auc": pctr_conversion_auc_scorer,
            },
            refit="ctcvr_auc",
            n_jobs=1,
        )
        t0 = time.perf_counter()
        search.fit(train.X, train.y, groups=train.group)
        elapsed = time.perf_counter() - t0

    res = pd.DataFrame(search.cv_results_)
    cols = [c for c in res.columns if c.startswith("param_")] + [
        "mean_test_ctcvr_auc",
        "mean_test_ctr_auc",
        "mean_test_pctr_conversion_auc",
    ]
    print(res[cols].sort_values("mean_test_ctcvr_auc", ascending=False).to_string(index=False))
    print(f"grid search: {elapsed:.1f} s; best: {search.best_params_}")
    best = search.best_estimator_
    print(
        f"held-out CTCVR AUC {best.score(test.X, test.y):.4f}, "
        f"CTR AUC {ctr_auc_scorer(best, test.X, test.y):.4f}, "
        f"conversion AUC of pCTR {pctr_conversion_auc_scorer(best, test.X, test.y):.4f}"
    )
    return search


# %%
# The search
# ----------
# Each row of the table is one grid point, cross-validated by request.

if __name__ == "__main__":
    main()
