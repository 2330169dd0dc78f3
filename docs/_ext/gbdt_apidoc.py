"""The API reference, written from the ``__all__`` of each public module before Sphinx lists the sources.

For every module of :data:`MODULES` it writes ``docs/api/<module>.rst``: the module's
docstring, then its public names by kind (classes, functions, exceptions and warnings,
other objects), each class and function with an autosummary page of its own. A name
exported by several modules (``gbdt_pwiser.CTCVRClassifier`` is
``gbdt_pwiser.sklearn.CTCVRClassifier``) is documented once, under the public module
closest to where it is defined (so the relative references of its docstring resolve among
its neighbours); the other modules list it with a short entry of their own, so every public
spelling of the name is a link target. A name added to
an ``__all__`` appears without any edit here; a new public module is one line of
:data:`MODULES`. ``docs/api/`` is generated (git-ignored); files are rewritten only
when their text changes, so a warm build stays incremental.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

#: The public modules, in the order of the API index.
MODULES = [
    "gbdt_pwiser",
    "gbdt_pwiser.sklearn",
    "gbdt_pwiser.objectives",
    "gbdt_pwiser.datasets",
    "gbdt_pwiser.metrics",
    "gbdt_pwiser.calibration",
    "gbdt_pwiser.evaluation",
    "gbdt_pwiser.dask",
    "gbdt_pwiser.engines",
    "gbdt_pwiser.exceptions",
]

_SECTIONS = [
    ("class", "Classes"),
    ("function", "Functions"),
    ("exception", "Exceptions and warnings"),
    ("data", "Constants and objects"),
]
_IMMUTABLE = (str, bytes, int, float, bool, tuple, frozenset, type(None))


def kind(obj: Any) -> str:
    """``"exception"``, ``"class"``, ``"function"`` or ``"data"``."""
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "function"
    return "data"


def _defined_in(obj: Any) -> str:
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return obj.__module__
    return type(obj).__module__


def public_names(modules: list[str] = MODULES) -> dict[str, list[tuple[str, Any]]]:
    """Each module's ``__all__`` with the objects, in ``__all__`` order."""
    out = {}
    for name in modules:
        mod = importlib.import_module(name)
        names = getattr(mod, "__all__", None)
        if names is None:
            raise ValueError(f"{name} has no __all__: the API reference is generated from it")
        out[name] = [(n, getattr(mod, n)) for n in names]
    return out


def homes(names: dict[str, list[tuple[str, Any]]]) -> dict[int, str]:
    """``id(obj) -> module`` documenting it: of the modules exporting it, the longest prefix of
    the module defining it (else the first in :data:`MODULES` order). Immutable constants are
    documented in every module exporting them and have no entry."""
    exporters: dict[int, list[str]] = {}
    objects: dict[int, Any] = {}
    for module, members in names.items():
        for _, obj in members:
            if isinstance(obj, _IMMUTABLE):
                continue
            exporters.setdefault(id(obj), []).append(module)
            objects[id(obj)] = obj
    result = {}
    for key, mods in exporters.items():
        where = _defined_in(objects[key])
        prefixes = [m for m in mods if where == m or where.startswith(m + ".")]
        result[key] = max(prefixes, key=len) if prefixes else mods[0]
    return result


def attr_doc(name: str, obj: Any, package: str = "gbdt_pwiser") -> list[str]:
    """The ``#:`` comment lines above ``name = ...`` in the package module that binds ``obj`` under ``name``."""
    for modname, mod in sorted(sys.modules.items()):
        if mod is None or not (modname == package or modname.startswith(package + ".")):
            continue
        if vars(mod).get(name, attr_doc) is not obj or not getattr(mod, "__file__", None):
            continue
        lines = Path(mod.__file__).read_text(encoding="utf-8").splitlines()
        for node in ast.parse("\n".join(lines)).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                doc, i = [], node.lineno - 2
                while i >= 0 and lines[i].lstrip().startswith("#:"):
                    doc.insert(0, lines[i].lstrip()[2:].strip())
                    i -= 1
                if doc:
                    return doc
    return []


def data_entry(name: str, obj: Any) -> str:
    """A ``py:data`` entry: the value when it is short and plain, and the ``#:`` comment documenting it.

    (``autodata`` would show the docstring of the value's type, e.g. ``str``'s, for an undocumented constant.)
    """
    lines = [f".. py:data:: {name}"]
    value = repr(obj)
    if isinstance(obj, _IMMUTABLE) and len(value) <= 60:
        lines.append(f"   :value: {value}")
    doc = attr_doc(name, obj)
    lines += [""] + [f"   {line}" for line in doc] if doc else []
    return "\n".join(lines) + "\n"


def _title(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def module_page(module: str, members: list[tuple[str, Any]], home: dict[int, str]) -> str:
    """The reST of one module's page."""
    parts = [_title(f"``{module}``"), f".. automodule:: {module}\n   :no-members:\n", f".. currentmodule:: {module}\n"]
    elsewhere = []
    by_kind: dict[str, list[str]] = {k: [] for k, _ in _SECTIONS}
    for name, obj in members:
        documented_in = home.get(id(obj), module)
        if documented_in != module:
            elsewhere.append((name, f"{documented_in}.{name}", kind(obj), obj))
        else:
            by_kind[kind(obj)].append(name)
    for k, heading in _SECTIONS:
        names = by_kind[k]
        if not names:
            continue
        parts.append(_title(heading, "-"))
        if k == "data":
            parts.extend(data_entry(n, dict(members)[n]) for n in names)
            continue
        body = "\n".join(f"   {n}" for n in names)  # pages from _templates/autosummary/<kind>.rst
        parts.append(f".. autosummary::\n   :toctree: generated\n   :nosignatures:\n\n{body}\n")
    if elsewhere:
        parts.append(_title("Also exported here", "-"))
        for name, target, k, obj in elsewhere:  # a target of its own, so this module's name resolves too
            directive = {"class": "class", "exception": "exception", "function": "function"}.get(k, "data")
            parts.append(
                f".. py:{directive}:: {name}\n   :no-index-entry:\n\n"
                f"   The same object as :py:obj:`{target}`: {_summary(obj)}\n"
            )
    return "\n".join(parts)


def index_page(modules: list[str]) -> str:
    """The API index: one line per module, then the toctree."""
    lines = [
        _title("API reference"),
        "Every public name of the package, from the ``__all__`` of each module. The user guide "
        "explains how they fit together; each page here is the reference of one name.\n",
        ".. list-table::\n   :header-rows: 1\n   :widths: 30 70\n\n   * - module\n     - what it holds",
    ]
    for m in modules:
        lines.append(f"   * - :doc:`{m}`\n     - {_summary(importlib.import_module(m))}")
    lines.append("\n.. toctree::\n   :hidden:\n\n" + "\n".join(f"   {m}" for m in modules) + "\n")
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api(out: Path, modules: list[str] = MODULES) -> None:
    """Write ``out/index.rst`` and one page per module; remove pages of names no longer public."""
    out.mkdir(parents=True, exist_ok=True)
    names = public_names(modules)
    home = homes(names)
    pages = set()
    for module, members in names.items():
        _write(out / f"{module}.rst", module_page(module, members, home))
        pages |= {
            f"{module}.{n}.rst" for n, obj in members if kind(obj) != "data" and home.get(id(obj), module) == module
        }
    _write(out / "index.rst", index_page(modules))
    keep = {f"{m}.rst" for m in modules} | {"index.rst"}
    for stale in out.glob("*.rst"):
        if stale.name not in keep:
            stale.unlink()
    for stale in (out / "generated").glob("*.rst"):  # autosummary's pages of names no longer public
        if stale.name not in pages:
            stale.unlink()


def _config_inited(app: Any, config: Any) -> None:
    write_api(Path(app.srcdir) / "api")


def setup(app: Any) -> dict[str, Any]:
    # at config-inited, before Sphinx lists the source files: autosummary (builder-inited) must
    # find these pages among them to write the stub of each name
    app.connect("config-inited", _config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
