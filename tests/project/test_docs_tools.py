"""The documentation build's own tools: the internal-link checker, the API page writer, the inventory lists.

The site itself is built by `make docs` (CI); these run without Sphinx.
"""

import importlib
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
sys.path.insert(0, str(DOCS))
sys.path.insert(0, str(DOCS / "_ext"))


def _site(tmp_path, pages):
    for name, html in pages.items():
        f = tmp_path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"<html><body>{html}</body></html>")
    return tmp_path


def test_check_links_passes_a_sound_site(tmp_path):
    import check_links

    site = _site(
        tmp_path,
        {
            "index.html": '<a href="guide/a.html#x">a</a><a href="#top">top</a><img src="img/p.png">'
            '<a href="https://numpy.org/doc/stable/">numpy</a><span id="top"></span>',
            "guide/a.html": '<h1 id="x">x</h1><a href="../index.html">home</a><a href="./">dir</a>',
            "guide/index.html": "",
            "img/p.png": "",
            "_static/theme.html": '<a href="{{ pathto(x) }}">template, not a page</a>',
        },
    )
    problems, internal, external = check_links.broken_links(site)
    assert problems == [] and internal == 5 and external == 1
    assert check_links.main([str(site)]) == 0


def test_check_links_reports_each_broken_link(tmp_path, capsys):
    import check_links

    site = _site(
        tmp_path,
        {
            "index.html": '<a href="missing.html">gone</a><a href="a.html#nowhere">bad anchor</a>'
            '<link href="_static/missing.css"><a href="../outside.html">out</a>',
            "a.html": '<p id="somewhere"></p>',
        },
    )
    problems, _, _ = check_links.broken_links(site)
    assert len(problems) == 4
    assert any("no file missing.html" in p for p in problems)
    assert any("no id 'nowhere' in a.html" in p for p in problems)
    assert any("_static/missing.css" in p for p in problems)
    assert any("outside the site" in p for p in problems)
    assert check_links.main([str(site)]) == 1
    assert "broken link: index.html: missing.html" in capsys.readouterr().err


def test_api_pages_cover_every_public_name_once():
    """Every name of every public __all__ gets an API page, or an entry that points at its one page."""
    pytest.importorskip("distributed")  # the API pages import gbdt_pwiser.dask (the dask extra)
    gbdt_apidoc = importlib.import_module("gbdt_apidoc")
    names = gbdt_apidoc.public_names()
    home = gbdt_apidoc.homes(names)
    for module, members in names.items():
        page = gbdt_apidoc.module_page(module, members, home)
        for name, obj in members:
            documented_in = home.get(id(obj), module)
            if documented_in != module:  # listed here, documented there
                assert f":: {name}\n" in page and f"`{documented_in}.{name}`" in page, (module, name)
            elif gbdt_apidoc.kind(obj) == "data":
                assert f".. py:data:: {name}\n" in page, (module, name)
            else:
                assert f"   {name}\n" in page, (module, name)  # in an autosummary with its own page
    # one home per object: CTCVRClassifier is documented under gbdt_pwiser.sklearn, listed at the top
    from gbdt_pwiser import CTCVRClassifier, evaluate

    assert home[id(CTCVRClassifier)] == "gbdt_pwiser.sklearn" and home[id(evaluate)] == "gbdt_pwiser.metrics"


def test_constants_carry_their_doc_comment_not_their_types_docstring():
    gbdt_apidoc = importlib.import_module("gbdt_apidoc")
    from gbdt_pwiser.calibration import BIN_WIDTH
    from gbdt_pwiser.metrics import ctr_auc_scorer

    entry = gbdt_apidoc.data_entry("BIN_WIDTH", BIN_WIDTH)
    assert ":value: 0.01" in entry and "bin width in log-odds" in entry
    entry = gbdt_apidoc.data_entry("ctr_auc_scorer", ctr_auc_scorer)  # an object: its comment, no value
    assert ":value:" not in entry and "AUC of pCTR against clicks" in entry
    assert gbdt_apidoc.data_entry("__version__", "0.1.0").count("\n") == 2  # no comment: name and value only


def test_api_index_lists_every_module():
    pytest.importorskip("distributed")  # the API pages import gbdt_pwiser.dask (the dask extra)
    gbdt_apidoc = importlib.import_module("gbdt_apidoc")
    index = gbdt_apidoc.index_page(gbdt_apidoc.MODULES)
    assert all(f":doc:`{m}`" in index and f"   {m}\n" in index + "\n" for m in gbdt_apidoc.MODULES)


def test_intersphinx_lists_are_well_formed():
    """Each list names an https site and entries 'name domain:role uri' (the build turns them into objects.inv)."""
    gbdt_inventories = importlib.import_module("gbdt_inventories")
    lists = sorted((DOCS / "_intersphinx").glob("*.txt"))
    assert {p.stem for p in lists} >= {"numpy", "sklearn", "xgboost", "lightgbm", "dask"}
    for path in lists:
        base, entries = gbdt_inventories.read_list(path)
        assert base.startswith("https://") and entries, path
        for name, domain, _role, uri in entries:
            assert domain in ("py", "std") and "$" not in uri and not uri.startswith(("http:", "https:", "/")), (
                path,
                name,
            )


def test_intersphinx_list_errors_name_the_line(tmp_path):
    gbdt_inventories = importlib.import_module("gbdt_inventories")
    bad = tmp_path / "x.txt"
    bad.write_text("base https://example.org/\nnumpy.ndarray py:class\n")
    with pytest.raises(ValueError, match=r"x.txt:2: expected 'name domain:role uri'"):
        gbdt_inventories.read_list(bad)
    bad.write_text("numpy.ndarray py:class a.html\n")
    with pytest.raises(ValueError, match="needs a line 'base https://"):
        gbdt_inventories.read_list(bad)
