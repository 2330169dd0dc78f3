"""``show_versions()``: what a bug report needs to know about the installation.

The dependency list is the package's own declaration (``pyproject.toml`` next
to a source checkout, else the installed metadata), so it cannot drift from
what ``pip`` installs. Versions are read from the installed metadata, without
importing the packages. CUDA is probed only when an NVIDIA driver library is
present, so a machine without a GPU initialises nothing.
"""

from __future__ import annotations

import ctypes
import importlib.metadata as md
import os
import platform
import re
import sys
from pathlib import Path

from ._version import __version__

__all__ = ["show_versions", "versions_info", "declared_dependencies"]

DIST = "gbdt-pwiser"
#: The NVIDIA driver library (loading it initialises no device; ``cuInit`` does).
_DRIVER = {"win32": "nvcuda.dll"}.get(sys.platform, "libcuda.so.1")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")


def _requirement(text: str) -> tuple[str, set[str], str | None]:
    """``(name, extras, extra marker)`` of a requirement string (``"x[a]>=1; extra == 'cli'"``)."""
    spec, _, marker = text.partition(";")
    m = _NAME.match(spec)
    if m is None:  # pragma: no cover - pip would have refused the metadata
        raise ValueError(f"cannot parse the requirement {text!r}")
    extras = {e.strip() for e in (m.group(2) or "[]")[1:-1].split(",") if e.strip()}
    hit = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    return m.group(1), extras, (hit.group(1) if hit else None)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared_requirements() -> tuple[list[str], dict[str, list[str]]]:
    """Core requirements and each extra's, from the source checkout's pyproject.toml or the metadata."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if sys.version_info >= (3, 11) and pyproject.is_file():  # a source checkout (Python 3.10 has no tomllib)
        import tomllib

        try:
            project = tomllib.loads(pyproject.read_text())["project"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            project = {}
        if project.get("name") == DIST:
            return list(project.get("dependencies", [])), dict(project.get("optional-dependencies", {}))
    core: list[str] = []
    extras: dict[str, list[str]] = {}
    for req in md.requires(DIST) or []:
        _, _, extra = _requirement(req)
        spec = req.partition(";")[0].strip()
        if extra is None:
            core.append(spec)
        else:
            extras.setdefault(extra, []).append(spec)
    return core, extras


def declared_dependencies() -> dict[str, list[str]]:
    """Every distribution gbdt-pwiser declares, mapped to ``"core"`` and/or the extras that install it.

    Extras that name gbdt-pwiser itself (``gbdt-pwiser[parquet]``) are
    expanded. The key is the distribution's name as declared.

    Examples
    --------
    >>> from gbdt_pwiser._show_versions import declared_dependencies
    >>> deps = declared_dependencies()
    >>> deps["scipy"], "cli" in deps["matplotlib"]
    (['core'], True)
    """
    core, extras = _declared_requirements()
    out: dict[str, list[str]] = {}
    for req in core:
        out.setdefault(_requirement(req)[0], []).append("core")

    def expand(extra: str, seen: frozenset[str]) -> list[str]:
        names = []
        for req in extras.get(extra, []):
            name, sub, _ = _requirement(req)
            if _normalise(name) == DIST:
                for s in sorted(sub - seen):
                    names.extend(expand(s, seen | {s}))
            else:
                names.append(name)
        return names

    for extra in extras:
        for name in expand(extra, frozenset({extra})):
            where = out.setdefault(name, [])
            if extra not in where:
                where.append(extra)
    return out


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def _cpus() -> str:
    total = os.cpu_count()
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = None
    return f"{total}" + ("" if usable is None or usable == total else f" ({usable} usable by this process)")


def _numba_info() -> dict[str, str]:
    import numba

    layer: str
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet: start the pool (no compilation) to ask
        try:
            from numba.np.ufunc import parallel

            parallel._launch_threads()
            layer = numba.threading_layer()
        except (ImportError, AttributeError, ValueError, RuntimeError) as exc:
            layer = f"unknown ({type(exc).__name__}: {exc})"
    return {
        "threading layer": layer,
        # numba.config sets its attributes from the environment at run time: no types for them
        "NUMBA_NUM_THREADS": str(numba.config.NUMBA_NUM_THREADS),  # type: ignore[attr-defined]
        "NUMBA_CACHE_DIR": numba.config.CACHE_DIR or "(next to the sources, else the user cache)",  # type: ignore[attr-defined]
    }


def _cuda_info() -> dict[str, str]:
    info = {"numba-cuda": _version("numba-cuda")}
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        info["driver"] = "not probed (NUMBA_ENABLE_CUDASIM=1: Numba's CUDA simulator)"
    else:
        try:
            ctypes.CDLL(_DRIVER)
        except OSError:
            info["driver"] = f"not found ({_DRIVER})"
            info["usable"] = "no"
            return info
        info["driver"] = f"found ({_DRIVER})"
    if info["numba-cuda"] == "not installed":
        info["usable"] = "no (pip install 'gbdt-pwiser[gpu]')"
        return info
    from .kernels.cuda import cuda_status, get_cuda

    ok, message = cuda_status()
    info["usable"] = message if ok else f"no ({message})"
    if ok and message == "gpu":
        mod = get_cuda()
        for i, dev in enumerate(mod.list_devices()):
            name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
            info[f"device {i}"] = f"{name}, compute capability {'.'.join(map(str, dev.compute_capability))}"
    return info


def versions_info() -> dict[str, dict[str, str]]:
    """What :func:`show_versions` prints, as sections of ``{name: value}``."""
    system = {
        "python": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "machine": platform.platform(),
        "cpus": _cpus(),
    }
    deps = declared_dependencies()
    core = {DIST: __version__}
    core.update({name: _version(name) for name, where in deps.items() if "core" in where})
    optional = {name: f"{_version(name)} [{', '.join(where)}]" for name, where in deps.items() if "core" not in where}
    return {
        "System": system,
        "Dependencies": core,
        "Optional dependencies [extras]": optional,
        "Numba": _numba_info(),
        "CUDA": _cuda_info(),
    }


def show_versions() -> None:
    """Print the platform, the versions of gbdt-pwiser and of every dependency, Numba's threads and CUDA.

    Paste its output into a bug report. It lists every dependency that
    gbdt-pwiser declares, the optional ones with the extras that install them
    (``not installed`` when absent), Numba's threading layer and thread count,
    and whether ``device="cuda"`` can run. Versions come from the installed
    metadata (nothing is imported but Numba); CUDA is probed only when an
    NVIDIA driver is installed, so without a GPU nothing is initialised.

    Examples
    --------
    >>> import gbdt_pwiser
    >>> gbdt_pwiser.show_versions()  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
    <BLANKLINE>
    System:
        python: ...
    Dependencies:
        gbdt-pwiser: ...
        numpy: ...
    Optional dependencies [extras]:
        pyarrow: ... [parquet, cli...]
    ...
    Numba:
        threading layer: ...
    CUDA:
        numba-cuda: ...
    """
    for title, section in versions_info().items():
        width = max(len(k) for k in section) if section else 0
        print(f"\n{title}:")
        for key, value in section.items():
            print(f"{key:>{width + 4}}: {value}")
