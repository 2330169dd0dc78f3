"""The saved-model format of ``CTCVRClassifier``: native boosters + ``meta.json``, in a directory or a zip.

Layout (format version 1)::

    ctr.<suffix>        the CTR booster in its library's native format (XGBoost ``ubj``, LightGBM ``txt``)
    cvr.<suffix>        the CVR booster (absent when the training data had no conversion)
    shared.ubj          instead of both, with structure="shared": the one two-output XGBoost booster
                        (meta.json then also holds its 2-vector init_margins_ and the category codes)
    meta.json           {"format", "format_version", "gbdt_pwiser_version",
                         "params": get_params(deep=False), "fitted": {fitted attributes}, "files": [...]}

The boosters can be loaded by the libraries alone; ``meta.json`` holds what the
estimator needs on top (starting margins, rounds used, feature names, …).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["save_model", "load_model", "FORMAT", "FORMAT_VERSION"]

FORMAT = "gbdt_pwiser.CTCVRClassifier"
FORMAT_VERSION = 1
# Fitted attributes stored in meta.json (besides feature_names_in_ and classes_, converted on load).
# backend_ and structure_ (what predict uses) are absent from models saved before they existed: load
# takes them from the saved parameters then.
_FITTED = ("backend_", "structure_", "n_features_in_", "ctr_init_margin_", "cvr_init_margin_", "n_rounds_ctr_", "n_rounds_cvr_",
           "best_iteration_ctr_", "best_iteration_cvr_", "cvr_fallback_rate_", "evals_result_",
           "_columns", "_categorical")
_FITTED_SHARED = ("backend_", "structure_", "n_features_in_", "init_margins_", "n_rounds_", "best_iteration_", "evals_result_",
                  "_columns", "_categorical")


def _shared(est: Any) -> bool:
    return getattr(est, "structure_", "chain") == "shared"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_model(est: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted estimator to ``path`` (a ``.zip`` archive, else a directory)."""
    from ._shared import codes_to_json, shared_backend

    shared = _shared(est)
    check_is_fitted(est, "booster_" if shared else "ctr_booster_")
    if shared:
        be = shared_backend(est.backend_)
        files = {f"shared.{be.suffix}": be.to_bytes(est.booster_)}
        fitted = {key: getattr(est, key) for key in _FITTED_SHARED}
        fitted["categorical_codes_"] = codes_to_json(est.categorical_codes_)
    else:
        be = est._fitted_backend()
        files = {f"ctr.{be.suffix}": be.to_bytes(est.ctr_booster_)}
        if est.cvr_booster_ is not None:
            files[f"cvr.{be.suffix}"] = be.to_bytes(est.cvr_booster_)
        fitted = {key: getattr(est, key) for key in _FITTED}
    fitted["n_features_in_"] = int(est.n_features_in_)
    fitted["feature_names_in_"] = list(est.feature_names_in_) if hasattr(est, "feature_names_in_") else None
    fitted["classes_"] = est.classes_.tolist()
    from .. import __version__

    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "gbdt_pwiser_version": __version__,
            "params": est.get_params(deep=False), "fitted": fitted, "files": sorted(files)}
    try:
        files["meta.json"] = json.dumps(meta, default=_json_default, indent=1).encode("utf-8")
    except TypeError as exc:
        raise TypeError(f"cannot save the parameters as JSON ({exc}); use ints/floats/strings in "
                        "the parameters, or pickle the estimator instead") from None
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, raw in files.items():
                zf.writestr(name, raw)
    else:
        path.mkdir(parents=True, exist_ok=True)
        for name, raw in files.items():
            (path / name).write_bytes(raw)


def _reader(path: Path) -> Callable[[str], bytes]:
    if path.is_dir():
        return lambda name: (path / name).read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            blobs = {name: zf.read(name) for name in zf.namelist()}
        return lambda name: blobs[name]
    raise FileNotFoundError(f"{str(path)!r} is neither a saved model directory nor a zip archive")


def load_model(cls: type, path: str | os.PathLike[str]) -> Any:
    """Read a model written by :func:`save_model` into a new ``cls`` instance."""
    path = Path(path)
    read = _reader(path)
    try:
        meta = json.loads(read("meta.json").decode("utf-8"))
    except (KeyError, FileNotFoundError):
        raise ValueError(f"{str(path)!r} has no meta.json: not a saved CTCVRClassifier") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} is not a CTCVRClassifier model of format version {FORMAT_VERSION}")
    est = cls(**meta["params"])
    est._validate_params()
    nthread = est._nthread()
    fitted = dict(meta["fitted"])
    # models saved before backend_/structure_ existed: the parameters they were fitted with
    est.backend_ = fitted.pop("backend_", est.backend)
    est.structure_ = fitted.pop("structure_", getattr(est, "structure", "chain"))
    names = fitted.pop("feature_names_in_")
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.classes_ = np.asarray(fitted.pop("classes_"))
    if _shared(est):
        from ._shared import codes_from_json, shared_backend

        be = shared_backend(est.backend_)
        est.categorical_codes_ = codes_from_json(fitted.pop("categorical_codes_"), fitted.get("_columns"))
        est.init_margins_ = np.asarray(fitted.pop("init_margins_"), dtype=np.float64)
        for key, value in fitted.items():
            setattr(est, key, value)
        est.booster_ = be.from_bytes(read(f"shared.{be.suffix}"), nthread)
        return est
    be = est._fitted_backend()
    for key, value in fitted.items():
        setattr(est, key, value)
    est.ctr_booster_ = be.from_bytes(read(f"ctr.{be.suffix}"), nthread)
    est.cvr_booster_ = (be.from_bytes(read(f"cvr.{be.suffix}"), nthread)
                        if f"cvr.{be.suffix}" in meta["files"] else None)
    return est
