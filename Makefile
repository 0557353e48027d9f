# Two commands do everything on a fresh machine: `make demo` and `make test`.
#
# The venv lives in .venv. torch==$(TORCH_VERSION) goes in first, in the variant TORCH names, so that
# `pip install -e .` finds it already satisfied and never pulls another build:
#
#   make test                 TORCH=auto (default): cuda when `nvidia-smi -L` works, cpu otherwise
#   make test TORCH=cpu       the CPU build (no CUDA libraries, ~200 MB instead of several GB)
#   make test TORCH=cuda      whatever the configured index serves (on PyPI, Linux: the CUDA build)
#
# TORCH=cpu first asks pip, without installing (`pip install --dry-run`), what the configured index
# would give. If that plan is already CPU-only (a `+cpu` wheel from a local mirror, macOS, no nvidia-*
# or triton packages) it is installed as is and no other index is contacted. Only when the plan would
# pull CUDA libraries (plain PyPI on Linux) is `torch==$(TORCH_VERSION)+cpu` taken from TORCH_CPU_INDEX
# (PyPI's other packages still come from the configured index). Point TORCH_CPU_INDEX at a mirror of
# https://download.pytorch.org/whl/cpu where that host is out of reach.
#
# The variant is chosen when .venv is created; to switch, `make clean` first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.rayrec-installed

TORCH           ?= auto
TORCH_VERSION   := 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: demo test test-all lint assets bench clean

# Exit 0 when pip's install plan (a --report JSON on stdin) pulls CUDA libraries.
define PLAN_HAS_CUDA
import json, sys
pkgs = [(i["metadata"]["name"].lower(), i["metadata"]["version"]) for i in json.load(sys.stdin)["install"]]
sys.exit(0 if any(n.startswith(("nvidia-", "cuda-", "triton")) or "+cu" in v for n, v in pkgs) else 1)
endef
export PLAN_HAS_CUDA

# Exit 0 when the venv's pip has `install --dry-run --report` (pip >= 22.2; Ubuntu 22.04 ships 22.0).
define PIP_HAS_REPORT
import sys, pip
sys.exit(tuple(int(p) for p in pip.__version__.split(".")[:2]) < (22, 2))
endef
export PIP_HAS_REPORT

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@variant="$(TORCH)"; \
	if [ "$$variant" = auto ]; then \
	  if nvidia-smi -L >/dev/null 2>&1; then variant=cuda; else variant=cpu; fi; \
	fi; \
	case "$$variant" in \
	cuda) echo "torch $(TORCH_VERSION): the configured index's build (TORCH=$(TORCH) -> cuda)"; \
	  $(PIP) install -q torch==$(TORCH_VERSION) ;; \
	cpu) { $(BIN)/python -c "$$PIP_HAS_REPORT" || $(PIP) install -q "pip>=22.2"; } && \
	  $(PIP) install -q --dry-run --ignore-installed --report $(VENV)/torch-plan.json torch==$(TORCH_VERSION) \
	    2>/dev/null || rm -f $(VENV)/torch-plan.json; \
	  if [ -f $(VENV)/torch-plan.json ] && $(BIN)/python -c "$$PLAN_HAS_CUDA" < $(VENV)/torch-plan.json; then \
	    echo "torch $(TORCH_VERSION): the configured index serves a CUDA build; taking +cpu from $(TORCH_CPU_INDEX)"; \
	    $(PIP) install -q --retries 1 --timeout 30 --extra-index-url $(TORCH_CPU_INDEX) \
	      torch==$(TORCH_VERSION)+cpu || { \
	      echo "could not install torch $(TORCH_VERSION)+cpu from $(TORCH_CPU_INDEX): set TORCH_CPU_INDEX" \
	           "to a mirror of it, or run with TORCH=cuda to accept the default build" >&2; exit 1; }; \
	  else \
	    echo "torch $(TORCH_VERSION): the configured index already serves a CPU-only build"; \
	    $(PIP) install -q torch==$(TORCH_VERSION); \
	  fi ;; \
	*) echo "TORCH must be cpu, cuda or auto, not '$$variant'" >&2; exit 2 ;; \
	esac
	$(PIP) install -q -e ".[dev]"
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
