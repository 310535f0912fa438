# nmt: the commands a user needs. On a fresh clone: `make demo`, then `make test`.
#
# Where packages go: an active virtualenv ($VIRTUAL_ENV) or conda env ($CONDA_PREFIX) is used as
# it is; otherwise a project-local .venv is created once with $(PYTHON). Installing runs again
# only when pyproject.toml changes (a stamp file inside the environment).
#
# PyTorch is installed first when the environment has none, as $(TORCH). A machine without an
# NVIDIA GPU can skip the CUDA libraries by taking PyTorch's CPU-only wheels:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
PYTHON ?= python3
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

ifdef VIRTUAL_ENV
ENV_DIR := $(VIRTUAL_ENV)
else ifdef CONDA_PREFIX
ENV_DIR := $(CONDA_PREFIX)
else
ENV_DIR := .venv
endif
PY := $(ENV_DIR)/bin/python
STAMP := $(ENV_DIR)/.nmt-installed
LOGDIR ?= outputs

.PHONY: install test lint demo tensorboard bench bench-scale clean

install: $(STAMP)

$(ENV_DIR)/bin/python:
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { \
	  echo "error: $(PYTHON) cannot create a virtual environment (no venv/ensurepip module)."; \
	  echo "On Debian/Ubuntu: sudo apt-get install python3-venv   (then run make again)"; \
	  exit 1; }
	$(PYTHON) -m venv $(ENV_DIR)

$(STAMP): pyproject.toml | $(ENV_DIR)/bin/python
	@$(PY) -c "import torch" 2>/dev/null || \
	  $(PY) -m pip install "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -e ".[dev]"
	@touch $@

test: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check nmt tests scripts

demo: $(STAMP)
	$(PY) scripts/demo.py $(ARGS)

tensorboard: $(STAMP)
	$(PY) -m tensorboard.main --logdir $(LOGDIR) --samples_per_plugin nmt_attention=100

# Speed figures (docs/BENCHMARKS.md): about 20 minutes on 2 cores, after ../shared/peers/onmt.sh.
# Options through ARGS, e.g. make bench ARGS="--precision bf16" (python scripts/bench.py --help).
bench: $(STAMP)
	$(PY) scripts/bench.py $(ARGS)

# Corpora of millions of pairs (docs/BENCHMARKS.md): prepare, train and restart times and memory
# for 1 M and 4 M pairs, about 10 minutes and 1 GB of disk under bench/scale; ARGS="--ranks 2"
# adds a 2-rank gloo run.
bench-scale: $(STAMP)
	PATH=$(ENV_DIR)/bin:$$PATH $(PY) scripts/bench_scale.py $(ARGS)

clean:
	rm -rf outputs multirun bench .pytest_cache .ruff_cache data/cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
