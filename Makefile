# Quick start:  make demo   (main job on the embedded simulator)
#               make test   (the whole test suite)
# Both build the virtual environment .venv from PyPI: `make demo` installs the package with its
# cli extra (plots, file readers); `make test` adds the test, CUDA-compile, Dask and torch extras.
#
# Release engineering (CI runs the first three after `make test`):
#   make test-floors   every runtime dependency at its declared floor, in .venv-floors, the CPU suite
#   make dist          wheel + sdist in dist/ (python -m build), checked with twine
#   make wheel-smoke   the built wheel in a fresh venv outside the tree: a fit, the CLI, py.typed
#   make lint / make typecheck / make format   ruff and mypy (not in CI yet)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
STAMP  := $(VENV)/.installed-test
TOOLS_STAMP := $(VENV)/.installed-tools
FLOORS := .venv-floors
FLOORS_STAMP := $(FLOORS)/.installed
SMOKE  ?= $(or $(TMPDIR),/tmp)/gbdt-pwiser-wheel-smoke

.PHONY: venv demo test test-cpu test-gpu-compile test-gpu-sim test-floors dist wheel-smoke lint typecheck \
	format bench clean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[cli]"
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml $(DEMO_STAMP)
	$(BIN)/python -m pip install -q -e ".[test,torch]"
	touch $(STAMP)

# build, twine, ruff, mypy and pre-commit: the dependency groups of pyproject.toml (not published).
$(TOOLS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --group release --group lint
	touch $(TOOLS_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/gbdt-pwiser compare

test: test-cpu test-gpu-compile test-gpu-sim

test-cpu: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 tests --ignore=tests/gpu --doctest-modules gbdt_pwiser

# Every CUDA kernel compiled to PTX and linked to cubins for sm_90/sm_100/sm_120 (no GPU needed;
# the CUDA 13 NVVM comes with numba-cuda[cu13] in the test extra). Fails rather than skips here.
test-gpu-compile: $(STAMP)
	GBDT_PWISER_REQUIRE_GPU_COMPILE=1 $(BIN)/python -m pytest -q -m gpu_compile tests/gpu

# CUDA kernels run in Numba's CUDA simulator (no GPU needed); on a GPU machine run
# `$(BIN)/python -m pytest tests/gpu` without the variable to test the real device.
test-gpu-sim: $(STAMP)
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q tests/gpu

# The declared floors, tested: tools/floors.py pins every runtime dependency (core and the cli
# extra) at the lower bound pyproject.toml declares; the package goes in without dependencies, so
# nothing newer sneaks in, and `pip check` proves the pins satisfy the declaration. Dask, torch
# and numba-cuda are not installed (their tests skip; .venv tests them). The smoke tests of the
# benchmark scripts are left out: they time and profile the scripts (a third of this run's time)
# and reach no package code that the rest of the suite does not. Numba's cache is kept apart from
# .venv's (another Numba version would overwrite it).
$(FLOORS_STAMP): pyproject.toml tools/floors.py
	rm -rf $(FLOORS)
	$(PYTHON) -m venv $(FLOORS)
	$(FLOORS)/bin/python -m pip install -q --upgrade pip
	$(FLOORS)/bin/python tools/floors.py --extras cli > $(FLOORS)/floors.txt
	$(FLOORS)/bin/python -m pip install -q -r $(FLOORS)/floors.txt "pytest>=7" "hypothesis>=6.80"
	$(FLOORS)/bin/python -m pip install -q --no-deps -e .
	$(FLOORS)/bin/python -m pip check
	touch $(FLOORS_STAMP)

test-floors: $(FLOORS_STAMP)
	@echo "floors: $$(tr '\n' ' ' < $(FLOORS)/floors.txt)"
	NUMBA_CACHE_DIR=$(CURDIR)/$(FLOORS)/numba-cache $(FLOORS)/bin/python -m pytest -q --durations=10 \
		tests --ignore=tests/gpu --ignore=tests/bench \
		--doctest-modules gbdt_pwiser

dist: $(TOOLS_STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

# The wheel in a fresh venv (core dependencies only, then the cli extra), run from outside the
# tree: tools/wheel_smoke.sh says what it checks.
wheel-smoke:
	@ls dist/*.whl >/dev/null 2>&1 || { echo "no wheel in dist/: run make dist first"; exit 1; }
	PYTHON=$(PYTHON) bash tools/wheel_smoke.sh "$(abspath $(firstword $(wildcard dist/*.whl)))" "$(SMOKE)"

lint: $(TOOLS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TOOLS_STAMP) $(STAMP)
	$(BIN)/mypy

format: $(TOOLS_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(FLOORS) .pytest_cache .hypothesis .mypy_cache .ruff_cache build dist *.egg-info

# The documentation site in docs/_build/html (Sphinx: docs/conf.py). Every warning is an error,
# the examples run, nothing is downloaded (local intersphinx inventories); then every internal
# link of the built site is checked. `make docs-clean` forgets the built site and generated pages.
.PHONY: docs docs-clean
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): pyproject.toml $(DEMO_STAMP)
	$(BIN)/python -m pip install -q -e ".[dask,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/python -m sphinx -b html -W --keep-going -q docs docs/_build/html
	$(BIN)/python docs/check_links.py docs/_build/html

docs-clean:
	rm -rf docs/_build docs/api docs/auto_examples docs/sg_execution_times.rst
