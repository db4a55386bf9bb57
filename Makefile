# sweepscope: `make run` watches a demo sweep live; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch; with a GPU, override: make TORCH_SPEC='torch==2.13.0' ...
TORCH_SPEC ?= torch==2.13.0
SPEC ?= experiments/sweeps/seed_grid.yaml
STORE ?= sqlite:///sweepscope.db
PORT ?= 8501
# The tests `make test-fast` runs: no Ray, browser, PostgreSQL server, SLURM or slow process.
FAST := not ray and not browser and not postgres and not slurm and not slow
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER ?= 0

.PHONY: run down test test-fast lint bench screenshots install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/pip install --quiet -e '.[test,bench]' '$(TORCH_SPEC)'
	touch $@

install: $(VENV)/.installed

## run: the seed grid on every local core, on a warm runtime with the dashboard at http://127.0.0.1:$(PORT)
run: install
	SWEEPSCOPE_STORE=$(STORE) ./scripts/demo.sh $(SPEC) $(PORT)

## down: stop the runtime `make run` started (Ray and the dashboard)
down: install
	$(BIN)/sweepscope down

## test: lint and the whole test suite
test: install lint
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

## test-fast: the tests to run while working (see FAST above), one worker per core:
## under two minutes on 2 cores
test-fast: install
	$(BIN)/ruff check runner dashboard experiments tests benchmarks
	$(BIN)/python -m pytest -q -n auto -m "$(FAST)" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check runner dashboard experiments tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/python -m benchmarks.run_all

## screenshots: the README's pictures, from the seed grid in Chromium (docs/screenshots/)
screenshots: install
	$(BIN)/python scripts/screenshots.py

## docs: the documentation site (mkdocs.yml, docs/*.md) into site/; any warning fails it
.PHONY: docs
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .sweepscope sweepscope.db sweepscope.db-wal sweepscope.db-shm site
