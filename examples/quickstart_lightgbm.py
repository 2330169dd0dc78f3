"""
PWiseR in ``lgb.train``
=======================

:class:`~gbdt_pwiser.PWiseRObjective` as the objective of :func:`lightgbm.train` on a simulated
ad log: group sizes of consecutive rows, the starting margin as ``init_score`` (which LightGBM
does not add back to raw predictions), and the click and conversion AUCs for early stopping.

Run it as a script::

    python examples/quickstart_lightgbm.py [--requests 4000] [--rounds 200]
"""

import argparse

import lightgbm as lgb
import numpy as np

from gbdt_pwiser import PWiseRObjective, initial_margin
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
from gbdt_pwiser.metrics import click_auc, conversion_auc, lgb_metric

ap = argparse.ArgumentParser()
ap.add_argument("--requests", type=int, default=4000)
ap.add_argument("--rounds", type=int, default=200)
args = ap.parse_args()

# %%
# A simulated log, split by request
# ---------------------------------
# LightGBM takes groups as the sizes of runs of consecutive rows, so both parts are sorted by group.

log = make_ad_log(args.requests, random_state=0)
train, valid = train_test_split_by_group(log, test_size=0.25, random_state=0)
train = train.sort_by_group()  # LightGBM groups are sizes of consecutive rows
valid = valid.align_categories(train).sort_by_group()

# %%
# Training with PWiseR, with early stopping
# -----------------------------------------
# The starting margin goes in as ``init_score``; LightGBM does not add it back to raw
# predictions. Its early stopping watches both AUCs and stops when either has not improved
# for 20 rounds.

base = initial_margin(train.y)  # start from the click log-odds
dtrain = lgb.Dataset(train.X, label=train.y, group=train.group_sizes(), init_score=np.full(len(train), base))
dvalid = lgb.Dataset(
    valid.X, label=valid.y, group=valid.group_sizes(), init_score=np.full(len(valid), base), reference=dtrain
)
params = {
    "objective": PWiseRObjective(lam=1.0),
    "metric": "None",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "verbose": -1,
    "seed": 0,
}
booster = lgb.train(
    params,
    dtrain,
    num_boost_round=args.rounds,
    valid_sets=[dvalid],
    feval=lgb_metric("auc_click", "auc_conv"),
    callbacks=[lgb.early_stopping(20, verbose=False)],
)
margin = booster.predict(valid.X, raw_score=True, num_iteration=booster.best_iteration) + base
print(
    f"best iteration {booster.best_iteration}: click AUC {click_auc(margin, valid.y):.4f}, "
    f"conversion AUC of pCTR {conversion_auc(margin, valid.y):.4f}"
)
