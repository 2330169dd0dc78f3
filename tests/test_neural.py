"""Smoke tests of the neural multi-task baselines (gbdt_pwiser.neural.models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from gbdt_pwiser.neural.models import ESMM, MMoE, PLE, SharedBottom, fit_neural  # noqa: E402
from gbdt_pwiser.neural.models import _batches  # noqa: E402

torch.set_num_threads(1)

MODEL_NAMES = ["shared_bottom", "esmm", "mmoe", "ple"]
SMALL = {
    "shared_bottom": dict(bottom=(16,), tower=(8,)),
    "esmm": dict(tower=(16,)),
    "mmoe": dict(n_experts=2, expert=(16,), tower=(8,)),
    "ple": dict(n_levels=2, n_shared_experts=1, n_task_experts=1, expert=(16,), tower=(8,)),
}


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "user": pd.Categorical(rng.integers(0, 30, n).astype(str)),
            "item": pd.Categorical(rng.integers(0, 50, n)),
            "price": rng.lognormal(size=n),
            "score": rng.normal(size=n),
        }
    )
    logit_c = -1.0 + 0.8 * X["score"].to_numpy()
    click = rng.random(n) < 1 / (1 + np.exp(-logit_c))
    conv = click & (rng.random(n) < 0.3)
    y = click.astype(int) + conv.astype(int)
    group = rng.integers(0, 200, n)
    return X, y, group


@pytest.fixture(scope="module")
def data():
    return _data()


def _fit(name, X, y, group, loss, seed=0, **kw):
    return fit_neural(
        name,
        X,
        y,
        group,
        loss=loss,
        lam=1.0,
        epochs=1,
        batch_size=256,
        lr=3e-3,
        embedding_dim=4,
        model_params=SMALL[name],
        random_state=seed,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize("loss", ["bce", "pwiser"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_epoch_smoke(data, name, loss):
    X, y, group = data
    model = _fit(name, X, y, group, loss)
    X_test = X.iloc[:300].copy()
    ctr, cvr, ctcvr = model.predict_ctr(X_test), model.predict_cvr(X_test), model.predict_ctcvr(X_test)
    for p in (ctr, cvr, ctcvr):
        assert p.shape == (300,)
        assert np.all(np.isfinite(p)) and np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(ctcvr, ctr * cvr)
    np.testing.assert_allclose(model.predict_proba(X_test)[:, 1], ctcvr)
    assert len(model.history_) == 1 and np.isfinite(model.history_[0])


@pytest.mark.parametrize("name", ["ple", "esmm"])
def test_deterministic_with_seed(data, name):
    X, y, group = data
    state = torch.get_rng_state()
    a = _fit(name, X, y, group, "pwiser", seed=3).predict_ctcvr(X)
    b = _fit(name, X, y, group, "pwiser", seed=3).predict_ctcvr(X)
    np.testing.assert_array_equal(a, b)
    c = _fit(name, X, y, group, "pwiser", seed=4).predict_ctcvr(X)
    assert not np.array_equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG left untouched


def test_pwiser_term_is_wired_in(data):
    X, y, group = data
    bce = _fit("mmoe", X, y, group, "bce").predict_ctr(X)
    lam0 = fit_neural(
        "mmoe", X, y, group, loss="pwiser", lam=0.0, epochs=1, batch_size=256, lr=3e-3,
        embedding_dim=4, model_params=SMALL["mmoe"], progress=False,
    ).predict_ctr(X)
    pw = _fit("mmoe", X, y, group, "pwiser").predict_ctr(X)
    np.testing.assert_allclose(lam0, bce, rtol=1e-4, atol=1e-6)
    assert np.max(np.abs(pw - bce)) > 1e-4


def test_unseen_categories_and_missing_values(data):
    X, y, group = data
    model = _fit("mmoe", X, y, None, "pwiser")
    X_new = pd.DataFrame(
        {
            "user": pd.Categorical(["never-seen", "3", None]),
            "item": pd.Categorical([10_000, 1, 2]),
            "price": [np.nan, 1.0, np.inf],
            "score": [0.0, np.nan, 1.0],
        }
    )
    p = model.predict_ctcvr(X_new)
    assert p.shape == (3,) and np.all(np.isfinite(p))


def test_two_column_labels_and_weights(data):
    X, y, group = data
    yy = np.column_stack([(y >= 1).astype(int), (y == 2).astype(int)])
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    a = _fit("shared_bottom", X, yy, group, "bce", sample_weight=w).predict_ctr(X.iloc[:50])
    assert np.all(np.isfinite(a))


def test_group_batches_keep_groups_together():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 60, 1000)
    codes[:300] = 60  # one group larger than the batch size
    batches = _batches(codes, len(codes), 128, rng)
    seen = np.concatenate(batches)
    assert np.array_equal(np.sort(seen), np.arange(1000))
    owner = {}
    for b_id, b in enumerate(batches):
        assert len(b) < 2 * 128
        for g in np.unique(codes[b]):
            if g != 60:
                assert owner.setdefault(g, b_id) == b_id


def test_direct_model_forward_shapes():
    cat = torch.zeros(5, 2, dtype=torch.long)
    num = torch.randn(5, 3)
    for cls in (SharedBottom, ESMM, MMoE, PLE):
        a, b = cls([4, 6], 3, embedding_dim=4)(cat, num)
        assert a.shape == (5,) and b.shape == (5,)


def test_bad_arguments(data):
    X, y, group = data
    with pytest.raises(ValueError):
        fit_neural("transformer", X, y, progress=False)
    with pytest.raises(ValueError):
        fit_neural("esmm", X, y, cvr_space="clicked", progress=False)
    with pytest.raises(ValueError):
        fit_neural("mmoe", X, y, loss="focal", progress=False)
    with pytest.raises(ValueError):
        fit_neural("mmoe", X, y[:-1], progress=False)
    with pytest.raises(ValueError):
        fit_neural("mmoe", X, np.where(y == 2, 3, y), progress=False)
    with pytest.raises(TypeError):
        fit_neural("mmoe", X.to_numpy(), y, progress=False)
