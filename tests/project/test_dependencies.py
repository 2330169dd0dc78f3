"""Dependencies: every import declared, the floors tool, the core without extras, missing extras named.

The floors themselves are tested by `make test-floors` (this suite at the declared lowest versions).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import floors  # noqa: E402

from gbdt_pwiser._optional import MissingOptionalDependency, require  # noqa: E402

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: Import names whose distribution is named differently.
DISTRIBUTION = {"sklearn": "scikit-learn"}
#: Optional top-level modules, and the paths whose module-level imports may need them.
OPTIONAL = {
    "pyarrow": (),
    "matplotlib": (),
    "dask": ("gbdt_pwiser/dask",),
    "distributed": ("gbdt_pwiser/dask",),
    "torch": ("gbdt_pwiser/neural/loss.py", "gbdt_pwiser/neural/models.py", "gbdt_pwiser/neural/training.py"),
    "numba_cuda": (),
}


def _name(req: str) -> str:
    return floors._normalise(floors._REQ.match(req)["name"])


def _third_party_imports() -> dict[str, list[str]]:
    """Top-level third-party modules imported anywhere in the package (also inside functions) -> files."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "gbdt_pwiser").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("gbdt_pwiser", "__future__"):
                    found.setdefault(top, []).append(path.relative_to(ROOT).as_posix())
    return found


def test_every_imported_package_is_declared():
    declared = {_name(r) for r in PROJECT["dependencies"]}
    declared |= {_name(r) for reqs in PROJECT["optional-dependencies"].values() for r in reqs}
    imported = _third_party_imports()
    assert {"numpy", "scipy", "llvmlite", "sklearn", "pyarrow", "matplotlib"} <= set(imported)  # the scan works
    missing = {m: files for m, files in imported.items() if floors._normalise(DISTRIBUTION.get(m, m)) not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_core_declares_what_core_modules_import_at_module_level():
    core = {_name(r) for r in PROJECT["dependencies"]}
    bad = {}
    for path in sorted((ROOT / "gbdt_pwiser").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.parse(path.read_text()).body:  # module level only: lazy imports are the extras' way
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("gbdt_pwiser", "__future__"):
                    continue
                allowed = top in OPTIONAL and any(rel.startswith(p) for p in OPTIONAL[top])
                if floors._normalise(DISTRIBUTION.get(top, top)) not in core and not allowed:
                    bad.setdefault(rel, []).append(top)
    assert not bad, f"module-level imports of optional packages (import them lazily): {bad}"


# ------------------------------------------------------------------ tools/floors.py


def test_floor_pins_expand_own_extras_and_require_a_lower_bound():
    project = {
        "name": "gbdt-pwiser",
        "dependencies": ["numpy>=1.24.1", "xgboost>=3.2,<4"],
        "optional-dependencies": {
            "parquet": ["pyarrow>=14"],
            "cli": ["gbdt-pwiser[parquet]", "matplotlib>=3.7"],
            "torch": ["torch==2.13.0"],
            "dask": ["dask[dataframe]>=2026.8.0,<2027"],
        },
    }
    assert floors.floor_pins(project, []) == ["numpy==1.24.1", "xgboost==3.2"]
    assert floors.floor_pins(project, ["cli", "torch", "dask"]) == [
        "numpy==1.24.1",
        "xgboost==3.2",
        "matplotlib==3.7",
        "torch==2.13.0",
        "dask[dataframe]==2026.8.0",
        "pyarrow==14",
    ]
    with pytest.raises(SystemExit, match="no lower bound"):
        floors.floor_pins({**project, "dependencies": ["numpy"]}, [])
    with pytest.raises(SystemExit, match="no extra"):
        floors.floor_pins(project, ["nope"])


def test_floors_of_this_project(capsys):
    assert floors.main(["--extras", "cli"]) == 0
    pins = capsys.readouterr().out.split()
    names = [p.split("==")[0] for p in pins]
    assert names[: len(PROJECT["dependencies"])] == [floors._REQ.match(r)["name"] for r in PROJECT["dependencies"]]
    assert {"matplotlib", "pyarrow"} <= set(names) and "dask" not in names


# ------------------------------------------------------------------ the core without the extras

_BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
sys.meta_path.insert(0, Block())
"""


def _run_without(blocked: set[str], code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK.format(blocked=sorted(blocked)) + code, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def test_the_core_imports_and_fits_without_any_extra():
    code = """
import importlib, json, pkgutil
import numpy as np, xgboost as xgb
import gbdt_pwiser
from gbdt_pwiser import CTCVRClassifier, PWiseRObjective, initial_margin
skip = ("gbdt_pwiser.dask", "gbdt_pwiser.neural.loss", "gbdt_pwiser.neural.models", "gbdt_pwiser.neural.training")
mods = [m.name for m in pkgutil.walk_packages(gbdt_pwiser.__path__, "gbdt_pwiser.") if not m.name.startswith(skip)]
for m in mods:
    importlib.import_module(m)
rng = np.random.default_rng(0)
X = rng.normal(size=(600, 3)); group = np.repeat(np.arange(60), 10)
y = np.where(rng.random(600) < 0.1, 2, np.where(rng.random(600) < 0.3, 1, 0)).astype(np.int8)
d = xgb.DMatrix(X, label=y, qid=group, base_margin=np.full(600, initial_margin(y)))
b = xgb.train({"tree_method": "hist", "max_depth": 2}, d, 3, obj=PWiseRObjective())
m = CTCVRClassifier(n_estimators=3, max_depth=2).fit(X, y, group=group)
print(json.dumps({"modules": len(mods), "rounds": b.num_boosted_rounds(), "p": m.predict_proba(X).shape}))
"""
    blocked = set(OPTIONAL)
    r = _run_without(blocked, code)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["modules"] > 40 and out["rounds"] == 3 and out["p"] == [600, 2]
    for name in blocked:  # the blocker works: none of them can be imported there
        assert _run_without(blocked, f"import {name}").returncode != 0


def test_require_names_the_extra_and_keeps_other_import_errors():
    assert require("numpy", extra="x", feature="f") is np
    with pytest.raises(MissingOptionalDependency) as info:
        require("no_such_module_gbdt", extra="parquet", feature="load_aliexpress")
    assert isinstance(info.value, ImportError) and info.value.extra == "parquet"
    assert "pip install 'gbdt-pwiser[parquet]'" in str(info.value) and "load_aliexpress" in str(info.value)


def test_require_keeps_the_error_of_a_package_that_is_installed_but_broken(tmp_path, monkeypatch):
    (tmp_path / "broken_pkg_gbdt").mkdir()
    (tmp_path / "broken_pkg_gbdt" / "__init__.py").write_text("import no_such_dependency_gbdt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("broken_pkg_gbdt", extra="x", feature="f")
    assert not isinstance(info.value, MissingOptionalDependency) and info.value.name == "no_such_dependency_gbdt"


@pytest.fixture
def no_pyarrow(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ModuleNotFoundError


def test_file_readers_without_pyarrow_name_the_parquet_extra(no_pyarrow, tmp_path):
    from gbdt_pwiser.datasets import load_ali_ccp, load_aliexpress, load_parquet_log
    from gbdt_pwiser.datasets.parquet_log import ParquetLog
    from gbdt_pwiser.engines import external

    calls = [
        lambda: load_aliexpress(tmp_path / "x.csv"),
        lambda: load_ali_ccp(tmp_path / "x.csv"),
        lambda: load_parquet_log(tmp_path),
        lambda: ParquetLog(tmp_path, label="y", group="g"),
        external._make_iter_class,
    ]
    for call in calls:
        with pytest.raises(MissingOptionalDependency, match=r"pip install 'gbdt-pwiser\[parquet\]'"):
            call()


def test_cli_without_matplotlib_skips_the_plots_with_one_note(monkeypatch, tmp_path, capsys):
    from gbdt_pwiser.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc = main(
        [*"compare --requests 300 --n-estimators 3 --no-sweep --bootstrap 0 --quiet --out".split(), str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("gbdt-pwiser: note:")]
    assert notes == [
        "gbdt-pwiser: note: plots skipped: drawing the plots needs matplotlib, which is not installed: "
        "pip install 'gbdt-pwiser[cli]'"
    ]
    assert "Traceback" not in err
    assert (tmp_path / "results.json").exists() and not list(tmp_path.glob("*.png"))


def test_cli_reading_a_file_without_pyarrow_is_a_one_line_error(no_pyarrow, tmp_path, capsys):
    from gbdt_pwiser.cli import main

    csv = tmp_path / "log.csv"
    csv.write_text("search_id,click,conversion\n1,0,0\n")
    rc = main(["compare", "--data", str(csv), "--quiet", "--no-plots", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().splitlines() == [
        "gbdt-pwiser: error: reading the processed AliExpress CSV layout needs pyarrow, which is not installed: "
        "pip install 'gbdt-pwiser[parquet]'"
    ]
