"""The saved-model format of ``CTCVRClassifier``: native boosters + ``meta.json``, in a directory or a zip.

Layout (format version 1)::

    ctr.<suffix>        the CTR booster in its library's native format (XGBoost ``ubj``, LightGBM ``txt``)
    cvr.<suffix>        the CVR booster (absent when the training data had no conversion)
    shared.ubj          instead of both, with structure="shared": the one two-output XGBoost booster
                        (meta.json then also holds its 2-vector init_margins_ and the category codes)
    meta.json           {"format", "format_version", "gbdt_pwiser_version",
                         "params": get_params(deep=False), "fitted": {fitted attributes}, "files": [...],
                         "sha256": {booster file: its SHA-256}}   (absent in older models)

The boosters can be loaded by the libraries alone; ``meta.json`` holds what the
estimator needs on top (starting margins, rounds used, feature names, …).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..calibration import Calibrator
from ..exceptions import ModelFileError
from ._encode import CategoricalCodes

__all__ = ["save_model", "load_model", "codes_to_json", "ModelFileError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "gbdt_pwiser.CTCVRClassifier"
FORMAT_VERSION = 1
# Fitted attributes stored in meta.json (besides feature_names_in_ and classes_, converted on load).
# backend_ and structure_ (what predict uses) are absent from models saved before they existed: load
# takes them from the saved parameters then.
_FITTED = (
    "backend_",
    "structure_",
    "n_features_in_",
    "ctr_init_margin_",
    "cvr_init_margin_",
    "n_rounds_ctr_",
    "n_rounds_cvr_",
    "best_iteration_ctr_",
    "best_iteration_cvr_",
    "cvr_fallback_rate_",
    "evals_result_",
    "_columns",
    "_categorical",
)
_FITTED_SHARED = (
    "backend_",
    "structure_",
    "n_features_in_",
    "init_margins_",
    "n_rounds_",
    "best_iteration_",
    "evals_result_",
    "_columns",
    "_categorical",
)


def _shared(est: Any) -> bool:
    return getattr(est, "structure_", "chain") == "shared"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _plain(cats: Any) -> list[Any]:
    """Categories as JSON values (numpy scalars as Python ones)."""
    return [v.item() if isinstance(v, np.generic) else v for v in pd.Index(cats).tolist()]


def codes_to_json(enc: CategoricalCodes) -> dict[str, list[Any]]:
    """The categories of a fitted :class:`CategoricalCodes`, JSON-ready (column → list)."""
    return {str(c): _plain(cats) for c, cats in enc.categories_.items()}


def _categories_from_json(raw: dict[str, list[Any]], columns: list[Any] | None) -> dict[Any, pd.Index]:
    """Column → categories, the column names restored from the fitted ``columns``."""
    by_str = {str(c): c for c in (columns or [])}
    return {by_str.get(c, c): pd.Index(v) for c, v in raw.items()}


def save_model(est: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted estimator to ``path`` (a ``.zip`` archive, else a directory)."""
    check_is_fitted(est, "structure_")
    shared = _shared(est)
    be = est._library()
    if shared:
        files = {f"shared.{be.suffix}": be.to_bytes(est.booster_)}
        fitted = {key: getattr(est, key) for key in _FITTED_SHARED}
        fitted["categorical_codes_"] = codes_to_json(est.categorical_codes_)
    else:
        files = {f"ctr.{be.suffix}": be.to_bytes(est.ctr_booster_)}
        if est.cvr_booster_ is not None:
            files[f"cvr.{be.suffix}"] = be.to_bytes(est.cvr_booster_)
        fitted = {key: getattr(est, key) for key in _FITTED}
    calibration = getattr(est, "calibration_", None)
    fitted["calibration_"] = None if calibration is None else calibration.to_json()
    fitted["categories_"] = {str(c): _plain(cats) for c, cats in getattr(est, "categories_", {}).items()}
    fitted["n_features_in_"] = int(est.n_features_in_)
    fitted["feature_names_in_"] = list(est.feature_names_in_) if hasattr(est, "feature_names_in_") else None
    fitted["classes_"] = est.classes_.tolist()
    from .. import __version__

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gbdt_pwiser_version": __version__,
        "params": est.get_params(deep=False),
        "fitted": fitted,
        "files": sorted(files),
        "sha256": {name: hashlib.sha256(raw).hexdigest() for name, raw in files.items()},
    }
    try:
        files["meta.json"] = json.dumps(meta, default=_json_default, indent=1).encode("utf-8")
    except TypeError as exc:
        raise TypeError(
            f"cannot save the parameters as JSON ({exc}); use ints/floats/strings in "
            "the parameters, or pickle the estimator instead"
        ) from None
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, raw in files.items():
                zf.writestr(name, raw)
    else:
        path.mkdir(parents=True, exist_ok=True)
        for name, raw in files.items():
            (path / name).write_bytes(raw)


def _bad(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"cannot load the model {str(path)!r}: {what}")


class _Members:
    """The files of a saved model (a directory or a zip archive), read one by one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            return
        if not path.exists():
            raise FileNotFoundError(
                f"{str(path)!r} is neither a saved model directory nor a zip archive: no such file or directory"
            )
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise _bad(path, f"it is neither a saved model directory nor a readable zip archive ({exc})") from exc

    def __enter__(self) -> _Members:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._zip is not None:
            self._zip.close()

    def has(self, name: str) -> bool:
        return (self.path / name).is_file() if self._zip is None else name in self._zip.namelist()

    def read(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes() if self._zip is None else self._zip.read(name)
        except (FileNotFoundError, KeyError):
            raise _bad(self.path, f"it has no {name}") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # a damaged member
            raise _bad(self.path, f"{name} cannot be read ({type(exc).__name__}: {exc})") from exc


def _booster(files: _Members, meta: dict, name: str, be: Any, nthread: int | None) -> Any:
    """One booster file, checked against its SHA-256 in ``meta.json`` before the library parses it."""
    raw = files.read(name)
    digest = meta.get("sha256", {}).get(name)  # absent in models saved before checksums were stored
    if digest is not None and hashlib.sha256(raw).hexdigest() != digest:
        raise _bad(files.path, f"{name} is damaged (its SHA-256 differs from the one recorded in meta.json)")
    if not raw:  # XGBoost aborts the process on an empty model buffer
        raise _bad(files.path, f"{name} is empty")
    try:
        return be.from_bytes(raw, nthread)
    except Exception as exc:  # the libraries' own error types (XGBoostError, LightGBMError, UnicodeDecodeError)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _bad(files.path, f"{name} is not a valid {be.name} model ({first})") from exc


def _meta(files: _Members) -> dict:
    if not files.has("meta.json"):
        raise _bad(files.path, "it has no meta.json (not a saved CTCVRClassifier)")
    raw = files.read("meta.json")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(files.path, f"meta.json is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(files.path, f"meta.json does not describe a saved CTCVRClassifier (format {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _bad(
            files.path,
            f"format version {meta.get('format_version')!r}; this gbdt_pwiser reads version {FORMAT_VERSION}",
        )
    for key, kind in (("params", dict), ("fitted", dict), ("files", list), ("sha256", dict)):
        if not isinstance(meta.get(key, {} if key == "sha256" else None), kind):
            raise _bad(files.path, f"meta.json has no {kind.__name__} {key!r}")
    return meta


def load_model(cls: type, path: str | os.PathLike[str]) -> Any:
    """Read a model written by :func:`save_model` into a new ``cls`` instance.

    Raises ``FileNotFoundError`` for a missing path and :class:`ModelFileError`
    (a ``ValueError``) naming the path and the problem for anything else.
    """
    path = Path(path)
    with _Members(path) as files:
        meta = _meta(files)
        try:
            est = _estimator(cls, meta)
        except KeyError as exc:
            raise _bad(path, f"meta.json lacks the entry {exc.args[0]!r}") from exc
        except (TypeError, ValueError, AttributeError) as exc:  # unknown or invalid parameters/attributes
            raise _bad(path, f"meta.json holds invalid values ({type(exc).__name__}: {exc})") from exc
        nthread = est._nthread()
        be = est._library()
        if _shared(est):
            est.booster_ = _booster(files, meta, f"shared.{be.suffix}", be, nthread)
            return est
        est.ctr_booster_ = _booster(files, meta, f"ctr.{be.suffix}", be, nthread)
        est.cvr_booster_ = (
            _booster(files, meta, f"cvr.{be.suffix}", be, nthread) if f"cvr.{be.suffix}" in meta["files"] else None
        )
    return est


def _estimator(cls: type, meta: dict) -> Any:
    """The estimator of ``meta.json`` with its fitted attributes set (not the boosters)."""
    est = cls(**meta["params"])
    est._validate_params()
    fitted = dict(meta["fitted"])
    # models saved before backend_/structure_ existed: the parameters they were fitted with
    est.backend_ = fitted.pop("backend_", est.backend)
    est.structure_ = fitted.pop("structure_", getattr(est, "structure", "chain"))
    names = fitted.pop("feature_names_in_")
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.classes_ = np.asarray(fitted.pop("classes_"))
    lost = [k for k in (_FITTED_SHARED if _shared(est) else _FITTED) if k not in fitted and k not in est.__dict__]
    if lost:
        raise KeyError(lost[0])
    calibration = fitted.pop("calibration_", None)
    if calibration is not None:
        est.calibration_ = Calibrator.from_json(calibration)
    if "categories_" in fitted:  # absent in models saved before it existed: then no recoding at predict
        est.categories_ = _categories_from_json(fitted.pop("categories_"), fitted.get("_columns"))
    if _shared(est):
        est.categorical_codes_ = CategoricalCodes()
        est.categorical_codes_.categories_ = _categories_from_json(
            fitted.pop("categorical_codes_"), fitted.get("_columns")
        )
        est.init_margins_ = np.asarray(fitted.pop("init_margins_"), dtype=np.float64)
    for key, value in fitted.items():
        setattr(est, key, value)
    return est
