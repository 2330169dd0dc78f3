"""The library's typed exceptions: code that must react to a specific failure catches one of these.

Each is a subclass of the built-in exception a caller would expect (``ValueError``,
``TypeError``), so ``except ValueError`` keeps working; their extra attributes say
what went wrong without parsing the message. They are plain classes with picklable
arguments, so an error raised inside a Dask task reaches the client as the same type.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GroupLayoutError", "DataSourceError", "ColumnError", "ModelFileError", "UnsupportedError"]


class GroupLayoutError(ValueError):
    """The rows of a group are not where a training path needs them.

    Raised when a group's rows are not contiguous inside a shard or partition, or
    when one group id occurs in two shards or partitions. Code that can fix the
    layout catches this type (the Dask engine then repartitions by group); every
    other ``ValueError`` is a problem of the data itself.

    Attributes
    ----------
    group : object
        One offending group id (``None`` when unknown).
    where : str
        The shard, partition or array concerned.
    """

    def __init__(self, message: str, group: Any = None, where: str = "") -> None:
        super().__init__(message)
        self.group = group
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:  # keep the attributes through pickling (Dask workers)
        return (type(self), (self.args[0], self.group, self.where))


class DataSourceError(ValueError):
    """A file of a log cannot be read as it must be (unreadable, corrupt, wrong types).

    Attributes
    ----------
    path : str
        The file concerned.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.path))


class ColumnError(DataSourceError):
    """A column of a log is missing, misnamed or of a type that cannot be used.

    Attributes
    ----------
    column : str
        The column concerned.
    path : str
        The file concerned (empty for in-memory data).
    """

    def __init__(self, message: str, column: str = "", path: str = "") -> None:
        super().__init__(message, path)
        self.column = column

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.column, self.path))


class ModelFileError(ValueError):
    """A saved model that cannot be loaded: the message names the path and what is wrong with it.

    Raised by ``load_model`` for a damaged archive or booster file, a missing
    or invalid ``meta.json``, or a file that is not a saved model at all (a
    path that does not exist is a ``FileNotFoundError``).
    """


class UnsupportedError(ValueError, NotImplementedError):
    """A combination of settings that a training engine cannot honour (see :mod:`gbdt_pwiser.engines.limits`).

    Both a ``ValueError`` (the settings are wrong for this engine) and a
    ``NotImplementedError`` (the engine lacks the feature): catch it as either.

    Attributes
    ----------
    engine : str
        The engine that refuses (``"memory"``, ``"external"``, ``"dask"``).
    feature : str
        What it refuses (a key of :data:`gbdt_pwiser.engines.limits.REASONS`).
    """

    def __init__(self, message: str, engine: str = "", feature: str = "") -> None:
        super().__init__(message)
        self.engine = engine
        self.feature = feature

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.engine, self.feature))
