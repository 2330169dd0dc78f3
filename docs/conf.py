"""Sphinx configuration of the gbdt_pwiser documentation (``make docs``).

The site is built from the Markdown pages of ``docs/`` (MyST-Parser), the
numpydoc docstrings of the public API (an autosummary page for every name in
the ``__all__`` of the public modules, listed in ``_ext/gbdt_apidoc.py``) and
the scripts of ``examples/`` (sphinx-gallery, run during the build).

No network: the intersphinx inventories of numpy, scikit-learn, XGBoost,
LightGBM, Dask, pandas and Python are written at build time from the readable
lists in ``_intersphinx/`` (``_ext/gbdt_inventories.py``), and every
``intersphinx_mapping`` entry points at such a local file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # the package of this checkout, even where an installed copy exists

import gbdt_gallery  # noqa: E402
import gbdt_inventories  # noqa: E402

import gbdt_pwiser  # noqa: E402

project = "gbdt_pwiser"
author = "gbdt_pwiser developers"
copyright = "gbdt_pwiser developers"
release = version = gbdt_pwiser.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
    "gbdt_apidoc",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_intersphinx",
    "_ext",
    "_templates",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.json",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
]

# -- MyST ---------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 4  # GitHub-style slugs, so links like mathematics.md#5-the-chained-… work here too

# -- autodoc, autosummary, numpydoc ---------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections give the types
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = True
# Types in Parameters/Returns are linked when they are one of these (numpydoc already knows
# int, float, str, bool, dict, list, tuple, None); other words of a type stay plain text.
numpydoc_xref_ignore = "all"
_XREF_CLASSES = [  # types written in full in the docstrings
    "numpy.ndarray",
    "numpy.random.Generator",
    "pandas.DataFrame",
    "pandas.Series",
    "os.PathLike",
    "xgboost.Booster",
    "xgboost.DMatrix",
    "lightgbm.Booster",
    "lightgbm.Dataset",
    "dask.dataframe.DataFrame",
    "dask.dataframe.Series",
    "dask.array.Array",
    "distributed.Client",
]
numpydoc_xref_aliases = {
    **{name: f":class:`{name}`" for name in _XREF_CLASSES},  # (an alias to itself would stay plain text)
    "ndarray": "numpy.ndarray",
    "array-like": ":term:`array-like <array_like>`",
    "array_like": ":term:`array_like`",
    "DataFrame": "pandas.DataFrame",
    "Series": "pandas.Series",
    "Generator": "numpy.random.Generator",
    "CTCVRClassifier": "gbdt_pwiser.sklearn.CTCVRClassifier",
    "ParquetLog": "gbdt_pwiser.datasets.ParquetLog",
    "AdLog": "gbdt_pwiser.datasets.AdLog",
}
# Every cross-reference must resolve (nitpicky), except those to the package's internals,
# which have no API page: private names and the non-public modules the docstrings point into.
nitpicky = True
nitpick_ignore_regex = [
    ("py:.*", r"(.*\.)?_[A-Za-z]\w*(\..*)?"),
    (
        "py:.*",
        r"gbdt_pwiser\.(engines\.(limits|dask|external|boosters|local)|objectives\.distributed"
        r"|datasets\.(split|sources)|kernels)(\..*)?",
    ),
    ("py:mod", r"\.?(limits|external|boosters|dask|local)"),  # gbdt_pwiser.engines' relative references
]
nitpick_ignore = [("py:class", "LogState"), ("py:func", "prepare_ptr"), ("py:func", "K.bce_pass_pd")]  # internal

# -- intersphinx: local inventories only (there is no network at build time) ------------------
intersphinx_mapping = gbdt_inventories.mapping(DOCS / "_intersphinx", DOCS / "_build" / "intersphinx")
intersphinx_timeout = 1

# -- sphinx-gallery -----------------------------------------------------------------------------
# The examples run during the build, in this process, on 2 cores in a few seconds each. The
# ones that cannot run here are shown but not executed (their output is not on the page):
#   * *dask*: a Dask example starts a LocalCluster of worker processes (tens of seconds, and
#     worker processes re-importing a gallery script are fragile); tests/ runs the Dask paths.
#   * aliexpress_sample_estimator.py: it reads the shared AliExpress sample beside the checkout
#     (../shared/data, as the tests do); without it, it is shown but not run.
_NOT_RUN = ["dask"] + ([] if gbdt_gallery.SAMPLE.exists() else ["aliexpress_sample_estimator"])

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(?![^/]*(" + "|".join(_NOT_RUN) + r"))[^/]*\.py$",  # on the file's name only
    "reset_argv": "gbdt_gallery.example_argv",  # the arguments each example runs with
    "within_subsection_order": "gbdt_gallery.ExampleOrder",
    "abort_on_example_error": True,
    "plot_gallery": os.environ.get("GBDT_PWISER_DOCS_RUN_EXAMPLES", "1") != "0",
    "download_all_examples": False,
    "notebook_extensions": set(),  # no notebooks: the scripts read their arguments with argparse
    "doc_module": ("gbdt_pwiser",),
    "backreferences_dir": None,
    "min_reported_time": 1,
    "capture_repr": ("__repr__",),
    "remove_config_comments": True,
    "show_memory": False,
    "show_signature": False,
}

# -- HTML -----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"gbdt_pwiser {version}"
html_static_path = ["_static"]
html_css_files = ["gbdt_pwiser.css"]
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
toc_object_entries_show_parents = "hide"  # "fit()" in a class page's contents, not "CTCVRClassifier.fit()"
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
