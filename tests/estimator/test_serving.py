"""A saved model served without gbdt_pwiser: docs/serving.md's recipe reproduces predict_ctcvr to 1e-6.

The recipe is read from the document itself and run in a fresh process in which ``import gbdt_pwiser``
fails, so the document cannot drift from what is tested.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from gbdt_pwiser import CTCVRClassifier
from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
SMALL = dict(n_estimators=6, max_depth=3, learning_rate=0.3, n_jobs=1, random_state=0)

CASES = {
    "xgb_chain": {},
    "lgb_chain": {"backend": "lightgbm"},
    "xgb_entire_isotonic": {"cvr_space": "entire", "calibration": "isotonic"},
    "lgb_sigmoid": {"backend": "lightgbm", "calibration": "sigmoid", "lam": 2.0},
    "shared": {"structure": "shared"},
    "shared_isotonic": {"structure": "shared", "calibration": "isotonic", "calibration_cv": 0.4},
    "no_conversions": {"backend": "lightgbm"},
}


def recipe() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/serving.md holds one recipe"
    return blocks[0]


def test_saved_models_serve_without_the_package(tmp_path):
    train, test = train_test_split_by_group(make_ad_log(600, random_state=2, ctr=0.1, cvr=0.3), 0.3, random_state=0)
    X = test.X
    for name, kw in CASES.items():
        y = np.minimum(train.y, 1) if name == "no_conversions" else train.y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = CTCVRClassifier(**SMALL, **kw).fit(train.X, y, group=train.group)
        model.save_model(tmp_path / f"{name}.zip" if "chain" in name else tmp_path / name)
        np.save(tmp_path / f"{name}.npy", model.predict_ctcvr(X))
    X.to_pickle(tmp_path / "X.pkl")
    script = tmp_path / "serve.py"
    script.write_text(
        "import sys\n"
        "sys.modules['gbdt_pwiser'] = None  # any import of the package fails\n"
        + recipe()
        + "\nimport numpy as np, pandas as pd\n"
        f"X = pd.read_pickle({str(tmp_path / 'X.pkl')!r})\n"
        f"for name in {list(CASES)!r}:\n"
        f"    path = {str(tmp_path)!r} + '/' + name + ('.zip' if 'chain' in name else '')\n"
        "    got = SavedModel(path).predict_ctcvr(X)\n"
        f"    want = np.load({str(tmp_path)!r} + '/' + name + '.npy')\n"
        "    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12, err_msg=name)\n"
        "print('served', len(X), 'rows')\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "served" in out.stdout


def test_the_recipe_cannot_import_the_package(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text("import sys\nsys.modules['gbdt_pwiser'] = None\nimport gbdt_pwiser\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "import of gbdt_pwiser halted" in out.stderr


@pytest.mark.parametrize("backend", ["xgboost", "lightgbm"])
def test_unseen_categories_are_missing_values(backend):
    """Categories seen only at prediction time are missing values (LightGBM's rule; XGBoost 3.2 refuses unseen
    string categories), and a column whose category list differs from the fitted one is recoded to it."""
    import pandas as pd

    lg = make_ad_log(300, random_state=1, ctr=0.1, cvr=0.3)
    model = CTCVRClassifier(backend=backend, **SMALL).fit(lg.X, lg.y, group=lg.group)
    col = lg.X.columns[[isinstance(t, pd.CategoricalDtype) for t in lg.X.dtypes]][0]
    cats = list(lg.X[col].cat.categories)
    X = lg.X.iloc[:50].copy()
    unseen = X.copy()
    unseen[col] = pd.Categorical([-12345] * 50, categories=[*cats, -12345])
    missing = X.copy()
    missing[col] = pd.Categorical([np.nan] * 50, categories=cats)
    np.testing.assert_allclose(model.predict_ctcvr(unseen), model.predict_ctcvr(missing), rtol=1e-12)
    shuffled = X.copy()  # the same values, the categories listed in another order
    shuffled[col] = shuffled[col].cat.reorder_categories(cats[::-1])
    np.testing.assert_array_equal(model.predict_ctcvr(shuffled), model.predict_ctcvr(X))
    strings = lg.X.iloc[:200].copy()
    strings[col] = strings[col].astype(str).astype("category")
    smodel = CTCVRClassifier(backend=backend, **SMALL).fit(strings, lg.y[:200], group=lg.group[:200])
    new = strings.iloc[:5].copy()
    new[col] = pd.Categorical(["never-seen"] * 5)
    gone = strings.iloc[:5].copy()
    gone[col] = pd.Categorical([None] * 5, categories=strings[col].cat.categories)
    np.testing.assert_allclose(smodel.predict_ctcvr(new), smodel.predict_ctcvr(gone), rtol=1e-12)
