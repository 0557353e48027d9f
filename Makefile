# Two commands do everything on a fresh machine: `make demo` and `make test`.
# The venv lives in .venv; torch==2.13.0 goes in first so no CUDA build is pulled.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rayrec-installed

.PHONY: demo test test-all lint assets bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

assets: $(STAMP)
	$(BIN)/rayrec assets fetch

demo: assets
	$(BIN)/rayrec demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: assets lint
	$(BIN)/python -m pytest

test-all: assets lint
	$(BIN)/python -m pytest -m "not gpu"

bench: assets
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
