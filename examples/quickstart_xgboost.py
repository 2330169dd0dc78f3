"""
PWiseR in ``xgb.train``
=======================

:class:`~gbdt_pwiser.PWiseRObjective` as the custom objective of :func:`xgboost.train` on a
simulated ad log: funnel labels, request ids as ``qid``, the starting margin a custom objective
needs, and the click and conversion AUCs as early-stopping metrics.

Run it as a script::

    python examples/quickstart_xgboost.py [--requests 4000] [--rounds 200]
"""

import argparse

import xgboost as xgb

from gbdt_pwiser import PWiseRObjective, initial_margin
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.metrics import click_auc, conversion_auc, xgb_metric

ap = argparse.ArgumentParser()
ap.add_argument("--requests", type=int, default=4000)
ap.add_argument("--rounds", type=int, default=200)
args = ap.parse_args()

# %%
# A simulated log, split by request
# ---------------------------------
# Labels are funnel labels ``y = click + conversion``; the request id is the group, passed to
# XGBoost as ``qid`` (rows of a request together).

log = make_ad_log(args.requests, random_state=0)  # funnel labels y = click + conversion
train, valid = train_test_split_by_group(log, test_size=0.25, random_state=0)
train = train.sort_by_group()  # XGBoost wants rows of a query (qid) together
valid = valid.align_categories(train).sort_by_group()

dtrain = xgb.DMatrix(train.X, label=train.y, qid=train.group, enable_categorical=True)
dvalid = xgb.DMatrix(valid.X, label=valid.y, qid=valid.group, enable_categorical=True)

# %%
# Training with PWiseR, early stopping on the conversion AUC
# ----------------------------------------------------------
# A custom objective gets no intercept, so the booster starts from the click log-odds; the
# default metric is switched off and the click and conversion AUCs are watched instead (XGBoost
# stops on the last one).

params = {
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.1,
    "base_score": initial_margin(train.y),  # a custom objective gets no intercept
    "disable_default_eval_metric": 1,  # the default metric would score funnel labels as regression
}
booster = xgb.train(
    params,
    dtrain,
    num_boost_round=args.rounds,
    obj=PWiseRObjective(lam=1.0),
    evals=[(dvalid, "valid")],
    custom_metric=xgb_metric("auc_click", "auc_conv"),
    early_stopping_rounds=20,
    verbose_eval=False,
)
margin = booster.predict(dvalid, output_margin=True, iteration_range=(0, booster.best_iteration + 1))
print(
    f"best iteration {booster.best_iteration}: click AUC {click_auc(margin, valid.y):.4f}, "
    f"conversion AUC of pCTR {conversion_auc(margin, valid.y):.4f}"
)
