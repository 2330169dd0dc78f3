"""
The AliExpress layout through ``CTCVRClassifier``
=================================================

A file of the processed AliExpress data set read by
:func:`~gbdt_pwiser.datasets.load_aliexpress` and fitted with
:class:`~gbdt_pwiser.sklearn.CTCVRClassifier` (a format check, not a benchmark)::

    python examples/aliexpress_sample_estimator.py --train TRAIN.csv --test TEST.csv

TRAIN/TEST are files in the processed AliExpress layout (``search_id``, ``categorical_1..16``,
``numerical_1..63``, ``click``, ``conversion``). The documentation build and the test suite run
it on the shared sample, 100 training and 20 test rows; every conversion there sits alone in its
request, so PWiseR has no pairs to rank and the figures below say nothing about quality. Point
``--train``/``--test`` at the full files (tens of millions of rows) for a real run.
"""

import argparse
import warnings
from pathlib import Path

from gbdt_pwiser import CTCVRClassifier, evaluate
from gbdt_pwiser.datasets import load_aliexpress

ap = argparse.ArgumentParser()
ap.add_argument("--train", type=Path, required=True, help="training file (AliExpress layout)")
ap.add_argument("--test", type=Path, required=True, help="test file (AliExpress layout)")
ap.add_argument("--n-estimators", type=int, default=20)
args = ap.parse_args()

train = load_aliexpress(args.train)
test = load_aliexpress(args.test).align_categories(train)
print(
    f"train: {len(train)} rows, {train.n_groups} requests, {int((train.y >= 1).sum())} clicks, "
    f"{int((train.y == 2).sum())} conversions; test: {len(test)} rows"
)

# %%
# The chained boosters on the sample
# ----------------------------------

model = CTCVRClassifier(
    backend="lightgbm",
    n_estimators=args.n_estimators,
    random_state=0,
    ctr_params={"min_data_in_leaf": 5},
    cvr_params={"min_data_in_leaf": 2},
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # tiny data: the boosters warn about few splits
    model.fit(train.X, train.y, group=train.group)
scores = evaluate(model, test.X, test.y, test.group)  # NaN where the 20 test rows hold one class only
print("pCTCVR of the first test rows:", model.predict_ctcvr(test.X)[:5].round(4))
print({k: round(v, 4) for k, v in scores.items()})
