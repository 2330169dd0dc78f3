"""Splitting a log by group (no request in both parts), with scikit-learn's ``GroupShuffleSplit``."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.model_selection import GroupShuffleSplit

from .._validation import check_int, check_real
from .adlog import AdLog

__all__ = ["train_test_split_by_group", "group_hash", "group_fold", "group_holdout"]

#: the hash buckets of :func:`group_holdout` (its fractions are multiples of 2**-20)
_BUCKETS = 1 << 20


def train_test_split_by_group(
    log: AdLog,
    test_size: float | int = 0.2,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[AdLog, AdLog]:
    """Split a log into train and test parts with no group in both.

    The groups (requests, users) are drawn with scikit-learn's
    ``GroupShuffleSplit`` and a share of them goes to the test part; rows keep
    their original order inside each part.

    Parameters
    ----------
    log : AdLog
        The log to split.
    test_size : float or int, default 0.2
        A float in (0, 1): the share of **groups** in the test part (rounded up,
        so the row share is only approximately ``test_size``); an int: the
        number of test groups. Both parts always get at least one group.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the shuffle (a ``Generator`` is used to draw the seed).

    Returns
    -------
    train, test : AdLog
        ``truth`` is split alongside when present.

    Raises
    ------
    ValueError
        If the log has fewer than 2 groups or ``test_size`` is out of range.
    TypeError
        If ``log`` is not an ``AdLog`` or ``test_size`` is not a number.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.datasets import make_ad_log, train_test_split_by_group
    >>> log = make_ad_log(100, random_state=0)
    >>> train, test = train_test_split_by_group(log, test_size=0.25, random_state=0)
    >>> train.n_groups, test.n_groups
    (75, 25)
    >>> len(np.intersect1d(train.group, test.group))
    0
    >>> len(train) + len(test) == len(log)
    True
    """
    if not isinstance(log, AdLog):
        raise TypeError(f"log must be an AdLog, got {type(log).__name__}")
    n_groups = log.n_groups
    if n_groups < 2:
        raise ValueError(f"cannot split by group: the log has {n_groups} group(s), need at least 2")
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        n_test = check_int(test_size, "test_size", lo=1, hi=n_groups - 1)
    else:
        frac = check_real(test_size, "test_size", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        # both parts keep at least one group
        n_test = min(max(math.ceil(frac * n_groups), 1), n_groups - 1)
    if isinstance(random_state, np.random.Generator):
        random_state = int(random_state.integers(0, 2**32 - 1))
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_test, train_size=n_groups - n_test, random_state=random_state)
    train_idx, test_idx = next(splitter.split(np.zeros((len(log), 1)), groups=log.group))
    return log.take(np.sort(train_idx)), log.take(np.sort(test_idx))


def group_hash(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """A seeded 64-bit hash of each group id: the same id hashes the same on every machine and engine.

    Integer ids of any width hash alike; any other hashable ids (strings,
    tuples) too. The basis of :func:`group_fold` and :func:`group_holdout`,
    which split a log by group without a global pass (each partition or shard
    alone decides where its rows go).
    """
    import pandas as pd

    arr = np.asarray(ids)
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind != "O":
        arr = arr.astype(object)
    key = f"{int(seed) % 10**16:016d}"
    return pd.util.hash_array(arr, hash_key=key, categorize=False)


def group_fold(ids: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0 .. n_folds - 1) of each row's group, by :func:`group_hash`: every group in one fold.

    Examples
    --------
    >>> import numpy as np
    >>> from gbdt_pwiser.datasets.split import group_fold
    >>> folds = group_fold(np.repeat(np.arange(1000), 3), 3)
    >>> bool(np.all(folds.reshape(-1, 3) == folds[::3, None])), sorted(np.unique(folds).tolist())
    (True, [0, 1, 2])
    """
    return (group_hash(ids, seed) % np.uint64(n_folds)).astype(np.int64)


def group_holdout(ids: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """True for the rows of held-out groups: a group is held out when its hash falls below ``fraction``.

    The share of held-out groups is close to, not exactly, ``fraction``.
    """
    cut = np.uint64(round(float(fraction) * _BUCKETS))
    return (group_hash(ids, seed) % np.uint64(_BUCKETS)) < cut
