"""Ad logs for CTR/CVR learning: the ``AdLog`` type, loaders of the public logs, a simulator and a group split.

* ``adlog``: ``AdLog``, features ``X`` (categorical fields as pandas
  ``category``, numerical ones as ``float32``), funnel labels ``y``
  (``click + conversion`` in {0, 1, 2}, int8) and per-row group ids ``group``.
* ``loaders``: ``load_aliexpress`` and ``load_ali_ccp`` (they read files the
  user has; nothing is downloaded).
* ``parquet``: ``load_parquet_log``, the same layouts from a Parquet folder or glob.
* ``parquet_log``: ``ParquetLog``, a log left in its Parquet shards (out-of-core training).
* ``sources``: the one data-source module — file listing, column and group-layout checks, shard reading.
* ``simulator``: ``make_ad_log``, a search-ad log with position bias and
  accidental clicks that never convert.
* ``split``: ``train_test_split_by_group``, no group in both parts.
"""

from .adlog import AdLog
from .loaders import (
    ALI_CCP_COLUMNS,
    ALI_CCP_DENSE,
    ALI_CCP_SPARSE,
    ALIEXPRESS_CATEGORICAL,
    ALIEXPRESS_COLUMNS,
    ALIEXPRESS_NUMERICAL,
    load_ali_ccp,
    load_aliexpress,
)
from .parquet import load_parquet_log
from .parquet_log import ParquetLog
from .simulator import make_ad_log
from .split import train_test_split_by_group

__all__ = [
    "AdLog",
    "ALIEXPRESS_CATEGORICAL",
    "ALIEXPRESS_NUMERICAL",
    "ALIEXPRESS_COLUMNS",
    "ALI_CCP_SPARSE",
    "ALI_CCP_DENSE",
    "ALI_CCP_COLUMNS",
    "load_aliexpress",
    "load_ali_ccp",
    "load_parquet_log",
    "ParquetLog",
    "make_ad_log",
    "train_test_split_by_group",
]
