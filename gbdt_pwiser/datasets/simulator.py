"""A simulator of search-ad exposure logs in the AliExpress layout (``make_ad_log``).

Requests, position bias, Zipf-distributed ids, a latent purchase intent and
accidental clicks that never convert: the noise that PWiseR is meant for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from .._validation import check_int, check_real
from .adlog import AdLog, _int_codes_dtype

__all__ = ["make_ad_log", "SIM_CATEGORICAL_ROLES", "SIM_NUMERICAL_ROLES"]

#: Roles of the first categorical columns of :func:`make_ad_log` (later ones are noise).
SIM_CATEGORICAL_ROLES: tuple[str, ...] = (
    "user_segment", "query_category", "device", "item_id", "item_category", "shop",
)  # fmt: skip
#: Roles of the first numerical columns of :func:`make_ad_log` (later ones are noise).
SIM_NUMERICAL_ROLES: tuple[str, ...] = (
    "position", "user_purchase_history", "user_activity", "log_price",
    "item_rating", "item_ctr_history", "relevance", "thumbnail_appeal",
)  # fmt: skip

_CALIBRATION_ROWS = 1 << 18
_N_SEGMENTS = 50
_DEVICE_P = np.array([0.6, 0.25, 0.1, 0.05])
_DEVICE_ACCIDENTAL = np.array([0.5, -0.3, 0.0, -0.5])  # mobile app: fat fingers
_NOISE_VOCAB = (100, 10, 1000, 5)


def _solve_intercept(score: np.ndarray, target: float, factor: np.ndarray | None = None) -> float:
    """b such that mean(factor * sigmoid(score + b)) == target (bisection, deterministic)."""
    lo, hi = -40.0, 40.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        p = expit(score + mid)
        m = float(np.mean(p if factor is None else factor * p))
        if m < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _zipf(rng: np.random.Generator, vocab: int, a: float, size: int | tuple[int, ...]) -> np.ndarray:
    """Bounded Zipf: P(k) ∝ (k+1)^-a for k in 0..vocab-1."""
    w = np.arange(1, vocab + 1, dtype=np.float64) ** (-a)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    u = rng.random(size)
    return np.minimum(np.searchsorted(cdf, u, side="right"), vocab - 1)


def make_ad_log(
    n_requests: int = 20000,
    *,
    mean_request_size: float = 25.0,
    ctr: float = 0.025,
    cvr: float = 0.025,
    accidental_click_rate: float = 0.3,
    n_categorical: int = 8,
    n_numerical: int = 12,
    position_bias: float = 0.4,
    zipf_a: float = 1.1,
    n_items: int = 2000,
    n_item_categories: int = 20,
    category_match_rate: float = 0.6,
    intent_click_weight: float = 0.5,
    request_size_shape: float = 3.0,
    with_truth: bool = True,
    random_state: int | np.random.Generator | None = 0,
) -> AdLog:
    """Simulate a search-ad exposure log in the AliExpress layout.

    Each request (a search, the group) shows a list of items; the user may
    click some of them and buy some of the clicked ones. Clicks come from two
    mechanisms: **intent clicks**, driven by the user's latent purchase intent,
    the item's relevance, quality and appeal and by position, which may
    convert; and **accidental clicks**, driven by position, thumbnail appeal
    ("clickbait") and device only, which never convert. Accidental clicks are
    the label noise that PWiseR targets: they look like clicks, so the true
    click probability ranks conversions worse than a model that also knows
    which clicks convert (see *Ground truth* below).

    The whole simulation is vectorised NumPy and deterministic given
    ``random_state``. The intercepts of the three logits are solved by
    bisection on (the first 2**18 rows of) the generated log so that the
    *expected* CTR, CVR among clicks and accidental share match ``ctr``,
    ``cvr`` and ``accidental_click_rate``; the realised rates then differ by
    sampling noise only.

    Parameters
    ----------
    n_requests : int, default 20000
        Number of requests (groups). The number of rows is about
        ``n_requests * mean_request_size``.
    mean_request_size : float, default 25
        Mean number of exposures per request. Sizes are ``1 +
        NegativeBinomial`` with mean ``mean_request_size - 1`` and shape
        ``request_size_shape`` (standard deviation about 14 at the defaults).
    ctr : float, default 0.025
        Target overall click-through rate (clicks per exposure). AliExpress's
        five country logs have about 2 % (1.9–2.6 %).
    cvr : float, default 0.025
        Target conversion rate among clicks (AliExpress: about 2–3.6 %). Must
        be below ``1 - accidental_click_rate``.
    accidental_click_rate : float, default 0.3
        Target share of clicks that are accidental (never convert). 0 turns
        the mechanism off.
    n_categorical : int, default 8
        Number of ``categorical_k`` columns (the real data has 16). The first
        six have the roles, in order: user segment (request-level, 50 Zipf
        values, shifts purchase intent), query category (request-level), device
        (request-level, 4 values, changes the accidental-click rate), item id
        (``n_items``, Zipf within category, carries item quality and appeal),
        item category (matching the query makes an item relevant) and shop
        (``n_items // 10`` shops, shop trust drives conversion). Columns beyond
        six are Zipf noise with 100, 10, 1000 and 5 values in turn. With fewer
        than six columns the remaining roles still act but are unobserved.
    n_numerical : int, default 12
        Number of ``numerical_k`` columns (the real data has 63). The first
        eight have the roles, in order: position in the request (0 = top),
        user purchase history (noisy view of the request's intent), user
        activity (click propensity), log price (lowers conversion), item rating
        (noisy item quality), item historical CTR (noisy appeal and quality),
        query-item relevance (noisy), thumbnail appeal (noisy clickbait score).
        Columns beyond eight are noise (normal, uniform, log-normal, sparse
        zero-inflated, in turn). With fewer than eight columns the remaining
        roles still act but are unobserved.
    position_bias : float, default 0.4
        Intent-click log-odds fall by ``position_bias * log(1 + position)``;
        accidental clicks fall twice as fast, so they gather at the top.
    zipf_a : float, default 1.1
        Exponent of the bounded Zipf laws of item, category, shop, segment and
        noise ids: ``P(rank k) ∝ k ** -zipf_a``. 0 gives uniform ids.
    n_items : int, default 2000
        Number of items, rounded up to a multiple of ``n_item_categories``.
    n_item_categories : int, default 20
        Number of item (and query) categories.
    category_match_rate : float, default 0.6
        Probability that a shown item is in the query's category (otherwise the
        category is drawn from the Zipf law).
    intent_click_weight : float, default 0.5
        Weight of the request's purchase intent in the intent-click logit
        (its weight in the conversion logit is 1).
    request_size_shape : float, default 3
        Shape of the negative binomial of request sizes (larger: less spread).
    with_truth : bool, default True
        Attach the per-row ground truth as ``log.truth``.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    AdLog
        ``X``: ``categorical_1..n_categorical`` (``category``, integer
        categories ``0..vocab-1``, the same list in every log with the same
        settings) then ``numerical_1..n_numerical`` (float32). ``y``: funnel
        labels. ``group``: the request id ``0..n_requests-1`` (int64); rows are
        contiguous by request and ordered by position. ``truth`` (if
        ``with_truth``): float32 columns ``p_click`` (true click probability),
        ``p_conversion`` (P(conversion), i.e. true pCTCVR), ``p_cvr``
        (P(conversion | click)), ``p_intent_click``, ``p_accidental_click``
        and bool ``accidental`` (the click was accidental). Write it in the CSV
        layout with ``log.to_frame().to_csv(path, index=False)``.

    Notes
    -----
    Realised rates at the defaults (20000 requests, about 500k rows; seeds 0
    and 1): CTR 2.50 %, CVR among clicks 2.3–2.6 %, 30 % of clicks accidental,
    mean request size 25.0 (standard deviation 15), 1.3–1.5 % of requests hold
    a conversion. Every such request has another row (conversion × non-click
    pairs) and 60–70 % of them a click-only row too (conversion × click-only
    pairs). Simulating takes about 0.7 s per 500k rows.

    Ground truth at the defaults: the AUC of the true click probability
    against conversions (all exposures) is about 0.90, against 0.94 for the
    true conversion probability ``p_conversion``; among clicked rows the true
    click probability reaches about 0.68 against 0.85 for ``p_cvr``. Clicks
    alone are a diluted signal of conversions; ranking conversions above
    click-only and non-click rows is the information that closes the gap. The
    true click probability has a click AUC of about 0.79.

    Examples
    --------
    >>> from gbdt_pwiser.datasets import make_ad_log
    >>> log = make_ad_log(2000, random_state=0)
    >>> log.X.columns[:3].tolist()
    ['categorical_1', 'categorical_2', 'categorical_3']
    >>> log.X.shape[1]
    20
    >>> bool(0.015 < log.click.mean() < 0.035)
    True
    >>> sizes = log.group_sizes()
    >>> len(sizes), bool(20 < sizes.mean() < 30)
    (2000, True)
    >>> make_ad_log(2000, random_state=0).X.equals(log.X)
    True
    """
    n_requests = check_int(n_requests, "n_requests", lo=1)
    mean_request_size = check_real(mean_request_size, "mean_request_size", lo=1.0)
    ctr = check_real(ctr, "ctr", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    cvr = check_real(cvr, "cvr", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    acc_rate = check_real(accidental_click_rate, "accidental_click_rate", lo=0.0, hi=1.0, hi_open=True)
    if cvr >= 1.0 - acc_rate:
        raise ValueError(
            f"cvr ({cvr}) must be below 1 - accidental_click_rate ({1.0 - acc_rate}): accidental clicks never convert"
        )
    n_categorical = check_int(n_categorical, "n_categorical", lo=0)
    n_numerical = check_int(n_numerical, "n_numerical", lo=0)
    if n_categorical + n_numerical == 0:
        raise ValueError("n_categorical + n_numerical must be at least 1")
    position_bias = check_real(position_bias, "position_bias", lo=0.0)
    zipf_a = check_real(zipf_a, "zipf_a", lo=0.0)
    n_cat = check_int(n_item_categories, "n_item_categories", lo=1)
    n_items = check_int(n_items, "n_items", lo=1)
    match_rate = check_real(category_match_rate, "category_match_rate", lo=0.0, hi=1.0)
    intent_w = check_real(intent_click_weight, "intent_click_weight")
    size_shape = check_real(request_size_shape, "request_size_shape", lo=0.0, lo_open=True)

    rng = np.random.default_rng(random_state)
    f64 = np.float64

    # ---- the world: items, shops, segments (independent of the requests)
    per_cat = -(-n_items // n_cat)
    n_items_eff = per_cat * n_cat
    n_shops = max(10, n_items_eff // 10)
    item_quality = rng.standard_normal(n_items_eff)
    item_appeal = rng.standard_normal(n_items_eff)
    cat_price = rng.normal(3.0, 0.7, n_cat)
    item_logprice_dev = rng.normal(0.0, 0.5, n_items_eff)  # deviation from the category's price
    item_shop = _zipf(rng, n_shops, zipf_a, n_items_eff)
    shop_trust = rng.normal(0.0, 0.5, n_shops)
    item_label = rng.permutation(n_items_eff)  # public id: no order by category or popularity
    item_rating = item_quality + rng.normal(0.0, 0.5, n_items_eff)
    item_ctr_hist = 0.7 * item_appeal + 0.3 * item_quality + rng.normal(0.0, 0.3, n_items_eff)
    item_thumb = item_appeal + rng.normal(0.0, 0.7, n_items_eff)
    segment_intent = rng.normal(0.0, 0.5, _N_SEGMENTS)

    # ---- requests
    m = mean_request_size - 1.0
    if m > 0:
        sizes = 1 + rng.negative_binomial(size_shape, size_shape / (size_shape + m), n_requests)
    else:
        sizes = np.ones(n_requests, dtype=np.int64)
    sizes = sizes.astype(np.int64)
    n = int(sizes.sum())
    starts = np.cumsum(sizes) - sizes
    req = np.repeat(np.arange(n_requests, dtype=np.int64), sizes)

    r_segment = _zipf(rng, _N_SEGMENTS, zipf_a, n_requests)
    r_query = _zipf(rng, n_cat, zipf_a, n_requests)
    r_device = np.minimum(np.searchsorted(np.cumsum(_DEVICE_P), rng.random(n_requests)), 3)
    r_intent = segment_intent[r_segment] + rng.standard_normal(n_requests)
    r_activity = rng.standard_normal(n_requests)
    r_history = 0.7 * r_intent + rng.normal(0.0, 0.7, n_requests)
    r_activity_obs = r_activity + rng.normal(0.0, 0.3, n_requests)

    # ---- exposures: which items, then the engine's ranking gives positions
    in_query = rng.random(n) < match_rate
    cat = np.where(in_query, r_query[req], _zipf(rng, n_cat, zipf_a, n))
    item = cat * per_cat + _zipf(rng, per_cat, zipf_a, n)
    match = (cat == r_query[req]).astype(f64)
    relevance = match + rng.normal(0.0, 0.5, n)
    engine = relevance + 0.3 * item_rating[item] + 0.3 * item_ctr_hist[item] + rng.standard_normal(n)
    order = np.lexsort((-engine, req))
    del engine, in_query
    cat, item, match, relevance = cat[order], item[order], match[order], relevance[order]
    pos = np.arange(n, dtype=np.int64) - starts[req]
    logpos = np.log1p(pos)

    # ---- click and conversion mechanisms
    q, a = item_quality[item], item_appeal[item]
    price_dev = item_logprice_dev[item]
    s_click = (
        0.8 * match + 0.4 * q + 0.6 * a + intent_w * r_intent[req] + 0.3 * r_activity[req]
        - position_bias * logpos - 0.2 * price_dev + rng.normal(0.0, 0.3, n)
    )  # fmt: skip
    s_acc = 0.8 * a + _DEVICE_ACCIDENTAL[r_device[req]] - 2.0 * position_bias * logpos
    s_conv = (
        r_intent[req] + 0.8 * q + shop_trust[item_shop[item]] + 0.4 * match
        - 0.5 * price_dev + rng.normal(0.0, 0.3, n)
    )  # fmt: skip
    del q, a

    cal = slice(0, min(n, _CALIBRATION_ROWS))
    p_int = expit(s_click + _solve_intercept(s_click[cal], ctr * (1.0 - acc_rate)))
    del s_click
    if acc_rate > 0:
        not_int = 1.0 - p_int
        p_acc = expit(s_acc + _solve_intercept(s_acc[cal], ctr * acc_rate, not_int[cal]))
        del not_int
    else:
        p_acc = np.zeros(n)
    del s_acc
    p_cv = expit(s_conv + _solve_intercept(s_conv[cal], ctr * cvr, p_int[cal]))
    del s_conv

    intent_click = rng.random(n) < p_int
    accidental = ~intent_click & (rng.random(n) < p_acc)
    conversion = intent_click & (rng.random(n) < p_cv)
    y = (intent_click | accidental).astype(np.int8) + conversion.astype(np.int8)

    # ---- observed features
    data: dict[str, Any] = {}
    n_noise_cat = 0
    for k in range(n_categorical):
        role = SIM_CATEGORICAL_ROLES[k] if k < len(SIM_CATEGORICAL_ROLES) else None
        if role == "user_segment":
            codes, vocab = r_segment[req], _N_SEGMENTS
        elif role == "query_category":
            codes, vocab = r_query[req], n_cat
        elif role == "device":
            codes, vocab = r_device[req], len(_DEVICE_P)
        elif role == "item_id":
            codes, vocab = item_label[item], n_items_eff
        elif role == "item_category":
            codes, vocab = cat, n_cat
        elif role == "shop":
            codes, vocab = item_shop[item], n_shops
        else:
            vocab = _NOISE_VOCAB[n_noise_cat % len(_NOISE_VOCAB)]
            codes = _zipf(rng, vocab, zipf_a, n)
            n_noise_cat += 1
        data[f"categorical_{k + 1}"] = pd.Categorical.from_codes(
            codes.astype(_int_codes_dtype(vocab)), categories=pd.RangeIndex(vocab)
        )
    n_noise_num = 0
    for k in range(n_numerical):
        role = SIM_NUMERICAL_ROLES[k] if k < len(SIM_NUMERICAL_ROLES) else None
        if role == "position":
            v = pos
        elif role == "user_purchase_history":
            v = r_history[req]
        elif role == "user_activity":
            v = r_activity_obs[req]
        elif role == "log_price":
            v = cat_price[cat] + price_dev
        elif role == "item_rating":
            v = item_rating[item]
        elif role == "item_ctr_history":
            v = item_ctr_hist[item]
        elif role == "relevance":
            v = relevance
        elif role == "thumbnail_appeal":
            v = item_thumb[item]
        else:
            kind = n_noise_num % 4
            if kind == 0:
                v = rng.standard_normal(n)
            elif kind == 1:
                v = rng.random(n)
            elif kind == 2:
                v = rng.lognormal(0.0, 1.0, n)
            else:
                v = np.where(rng.random(n) < 0.8, 0.0, rng.random(n))
            n_noise_num += 1
        data[f"numerical_{k + 1}"] = np.asarray(v, dtype=np.float32)
    X = pd.DataFrame(data, copy=False)

    truth = None
    if with_truth:
        p_click = p_int + (1.0 - p_int) * p_acc
        p_ctcvr = p_int * p_cv
        truth = pd.DataFrame(
            {
                "p_click": p_click.astype(np.float32),
                "p_conversion": p_ctcvr.astype(np.float32),
                "p_cvr": (p_ctcvr / p_click).astype(np.float32),
                "p_intent_click": p_int.astype(np.float32),
                "p_accidental_click": p_acc.astype(np.float32),
                "accidental": accidental,
            },
            copy=False,
        )
    return AdLog(X=X, y=y, group=req, truth=truth)
