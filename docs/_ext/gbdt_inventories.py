"""Local intersphinx inventories: the build never downloads one (there is no network in CI).

Each ``docs/_intersphinx/<project>.txt`` lists the names these docs link to in one
project's documentation, with the page (and anchor) of each on its public site::

    base https://numpy.org/doc/stable/
    numpy.ndarray  py:class  reference/generated/numpy.ndarray.html#$

(``$`` stands for the name). :func:`mapping`
writes each list as an ``objects.inv`` (with sphobjinv) under the build folder and
returns ``intersphinx_mapping`` pointing at those files, so a reference to
``numpy.ndarray`` becomes a link to numpy.org without any download. A name the
docs need that is missing from a list is a warning under ``nitpicky``; add it
there, with the real URL.

    python docs/_ext/gbdt_inventories.py     # writes them (the build does this itself)
"""

from __future__ import annotations

import sys
from pathlib import Path


def read_list(path: Path) -> tuple[str, list[tuple[str, str, str, str]]]:
    """The base URL and the ``(name, domain, role, uri)`` entries of one list file."""
    base, entries = "", []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0] == "base" and len(fields) == 2:
            base = fields[1]
            continue
        if len(fields) != 3 or ":" not in fields[1]:
            raise ValueError(f"{path}:{n}: expected 'name domain:role uri', got {raw!r}")
        domain, role = fields[1].split(":", 1)
        entries.append((fields[0], domain, role, fields[2].replace("$", fields[0])))
    if not base.startswith("https://") or not base.endswith("/"):
        raise ValueError(f"{path}: needs a line 'base https://…/' (the site the URIs are relative to)")
    return base, entries


def inventory_bytes(project: str, entries: list[tuple[str, str, str, str]]) -> bytes:
    """A compressed ``objects.inv`` (format version 2) holding ``entries``."""
    import sphobjinv as soi  # the docs extra; reading the lists needs nothing

    inv = soi.Inventory()
    inv.project, inv.version = project, "stable"
    for name, domain, role, uri in entries:
        inv.objects.append(soi.DataObjStr(name=name, domain=domain, role=role, priority="1", uri=uri, dispname="-"))
    return soi.compress(inv.data_file(contract=True))


def mapping(lists: Path, out: Path) -> dict[str, tuple[str, str]]:
    """Write every ``lists/*.txt`` to ``out/<project>.inv``; the ``intersphinx_mapping`` of those files."""
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    for path in sorted(lists.glob("*.txt")):
        project = path.stem
        base, entries = read_list(path)
        data = inventory_bytes(project, entries)
        target = out / f"{project}.inv"
        if not target.exists() or target.read_bytes() != data:  # unchanged: keep the warm build warm
            target.write_bytes(data)
        result[project] = (base, str(target))
    return result


if __name__ == "__main__":
    docs = Path(__file__).resolve().parents[1]
    for name, (base, inv) in mapping(docs / "_intersphinx", docs / "_build" / "intersphinx").items():
        print(f"{name}: {inv} -> {base}", file=sys.stderr)
