"""Ad logs for CTR/CVR learning: the ``AdLog`` type, loaders of the public logs, a simulator and a group split.

* ``adlog``: ``AdLog``, features ``X`` (categorical fields as pandas
  ``category``, numerical ones as ``float32``), funnel labels ``y``
  (``click + conversion`` in {0, 1, 2}, int8) and per-row group ids ``group``.
* ``loaders``: ``load_log`` (your own log, CSV or Parquet, in your own column
  names), ``load_aliexpress`` and ``load_ali_ccp`` (the paper's layouts),
  ``load_parquet_log`` (those layouts from Parquet); they read files the
  user has; nothing is downloaded.
* ``columns``: ``LogColumns`` (the roles of a log's columns) and the one
  conversion of what was read (labels, group, categorical inference).
* ``parquet_log``: ``ParquetLog``, a log left in its Parquet shards (out-of-core training, Dask).
* ``sources``: the one data-source module — file listing, column and group-layout checks, reading files.
* ``simulator``: ``make_ad_log``, a search-ad log with position bias and
  accidental clicks that never convert.
* ``split``: ``train_test_split_by_group``, no group in both parts.
"""

from .adlog import AdLog
from .columns import InferredCategoricalWarning, LogColumns
from .loaders import (
    ALI_CCP_COLUMNS,
    ALI_CCP_DENSE,
    ALI_CCP_SPARSE,
    ALIEXPRESS_CATEGORICAL,
    ALIEXPRESS_COLUMNS,
    ALIEXPRESS_NUMERICAL,
    load_ali_ccp,
    load_aliexpress,
    load_log,
    load_parquet_log,
)
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
    "InferredCategoricalWarning",
    "LogColumns",
    "load_log",
    "load_aliexpress",
    "load_ali_ccp",
    "load_parquet_log",
    "ParquetLog",
    "make_ad_log",
    "train_test_split_by_group",
]
