"""Print the runtime dependencies of pyproject.toml pinned at their declared floors (``name==floor``).

One source: the floors are the ``>=`` bounds of ``[project].dependencies``
(and of the extras named with ``--extras``, extras that name gbdt-pwiser
itself expanded). ``make test-floors`` installs the printed pins into
``.venv-floors`` and runs the test suite there. A requirement without a
``>=`` (or ``==``) bound is an error: every dependency must declare the
lowest version it was tested with.

    python tools/floors.py                 # core
    python tools/floors.py --extras cli    # core + the cli extra
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_REQ = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*)(?P<marker>;.*)?$"
)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floor_pins(project: dict, extras: list[str]) -> list[str]:
    """``name[extras]==floor`` for the core requirements and those of ``extras``, in declared order."""
    own = _normalise(project["name"])
    optional = project.get("optional-dependencies", {})
    reqs: list[str] = list(project.get("dependencies", []))
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"floors: no extra {extra!r} in pyproject.toml (has {sorted(optional)})")
        seen.add(extra)
        for req in optional[extra]:
            m = _REQ.match(req)
            if m and _normalise(m["name"]) == own:  # "gbdt-pwiser[parquet]": expand
                todo.extend(e.strip() for e in (m["extras"] or "[]")[1:-1].split(",") if e.strip())
            else:
                reqs.append(req)
    pins: dict[str, str] = {}
    for req in reqs:
        m = _REQ.match(req)
        if m is None or m["marker"]:
            raise SystemExit(f"floors: cannot pin {req!r} (no environment markers in runtime dependencies)")
        bounds = dict(re.findall(r"(>=|==|~=)\s*([^,\s]+)", m["spec"]))
        floor = bounds.get("==") or bounds.get(">=") or bounds.get("~=")
        if floor is None:
            raise SystemExit(f"floors: {req!r} declares no lower bound (>=): every dependency needs one")
        pins.setdefault(_normalise(m["name"]), f"{m['name']}{m['extras'] or ''}=={floor}")
    return list(pins.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="", help="comma-separated extras to include (e.g. cli)")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    project = tomllib.loads(args.pyproject.read_text())["project"]
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    sys.stdout.write("".join(f"{pin}\n" for pin in floor_pins(project, extras)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
