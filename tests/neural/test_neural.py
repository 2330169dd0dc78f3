"""Tests of the neural multi-task baselines (gbdt_pwiser.neural: models, training, encoding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from gbdt_pwiser.neural.encoding import FeatureEncoder  # noqa: E402
from gbdt_pwiser.neural.models import ESMM, PLE, MMoE, SharedBottom  # noqa: E402
from gbdt_pwiser.neural.training import _batches, fit_neural  # noqa: E402

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
        "mmoe",
        X,
        y,
        group,
        loss="pwiser",
        lam=0.0,
        epochs=1,
        batch_size=256,
        lr=3e-3,
        embedding_dim=4,
        model_params=SMALL["mmoe"],
        progress=False,
    ).predict_ctr(X)
    pw = _fit("mmoe", X, y, group, "pwiser").predict_ctr(X)
    np.testing.assert_allclose(lam0, bce, rtol=1e-4, atol=1e-6)
    assert np.max(np.abs(pw - bce)) > 1e-4


def test_unseen_categories_and_missing_values(data):
    X, y, _ = data
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
    X, y, _ = data
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


def test_feature_encoder_indices_and_scaling():
    X = pd.DataFrame(
        {
            "shop": pd.Categorical(["b", "a", "b", None]),
            "item": pd.Series([30, 10, 20, 10]).astype("category"),
            "flag": [True, False, True, True],
            "price": [1.0, 3.0, np.nan, np.inf],
        }
    )
    enc = FeatureEncoder().fit(X)
    assert enc.cat_cols_ == ["shop", "item"] and enc.num_cols_ == ["flag", "price"]
    assert enc.cardinalities == [3, 4]  # seen values + the reserved index 0 (missing is not a category)
    codes, num = enc.transform(X)
    assert codes.dtype == np.int64 and num.dtype == np.float32
    assert codes[:, 0].tolist() == [2, 1, 2, 0] and codes[:, 1].tolist() == [3, 1, 2, 1]
    # StandardScaler over the finite training values; missing/infinite -> 0 (the mean)
    np.testing.assert_allclose(num[:, 1], [-1.0, 1.0, 0.0, 0.0], atol=1e-6)
    flag = np.array([1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(num[:, 0], (flag - flag.mean()) / flag.std(), rtol=1e-6)
    new = pd.DataFrame(
        {
            "shop": pd.Categorical(["zz", "a"]),
            "item": pd.Categorical([99, 30]),
            "flag": [False, True],
            "price": [3.0, 1.0],
        }
    )
    c2, _ = enc.transform(new)
    assert c2.tolist() == [[0, 0], [1, 3]]  # unseen -> 0
    with pytest.raises(ValueError, match="lacks the training columns"):
        enc.transform(new.drop(columns="price"))
    with pytest.raises(TypeError, match="unsupported dtype"):
        FeatureEncoder().fit(pd.DataFrame({"t": pd.to_timedelta([1, 2], unit="s")}))


def test_progress_bar_only_on_a_terminal(data, capsys):
    """progress=True draws nothing when stderr is not a terminal (CI logs, pipes)."""
    X, y, group = data
    fit_neural(
        "esmm",
        X.iloc[:300],
        y[:300],
        group[:300],
        epochs=2,
        batch_size=128,
        embedding_dim=2,
        model_params=SMALL["esmm"],
        progress=True,
    )
    err = capsys.readouterr().err
    assert err == ""


def test_bad_numbers_name_the_parameter(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        fit_neural("mmoe", X, y, epochs=0, progress=False)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        fit_neural("mmoe", X, y, batch_size=2.5, progress=False)
    with pytest.raises(ValueError, match="lr must be"):
        fit_neural("mmoe", X, y, lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fit_neural("mmoe", X, y, sample_weight=-np.ones(len(y)), progress=False)
