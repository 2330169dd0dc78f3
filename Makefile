# Quick start:  make demo   (main job on the embedded simulator)
#               make test   (the whole test suite)
# Both build the virtual environment .venv from PyPI: `make demo` installs only the package and its
# runtime dependencies; `make test` adds the test, CUDA-compile, Dask and torch extras.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
STAMP  := $(VENV)/.installed-test

.PHONY: venv demo test test-cpu test-gpu-compile test-gpu-sim bench clean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml $(DEMO_STAMP)
	$(BIN)/python -m pip install -q -e ".[test,torch]"
	touch $(STAMP)

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

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

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
