# nmt: the commands a user needs. `make install` then `make demo` / `make test`.
PYTHON ?= python3
TORCH_CPU ?= torch==2.13.0

.PHONY: install test lint demo tensorboard bench clean

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "$(TORCH_CPU)"
	$(PYTHON) -m pip install -e ".[dev]"

test:
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check nmt tests scripts

demo:
	$(PYTHON) scripts/demo.py

tensorboard:
	$(PYTHON) -m tensorboard.main --logdir outputs

# Speed figures next to the peers' (../shared/docs/BENCHMARKS.md): about 10 minutes on 2 cores.
# Options through ARGS, e.g. make bench ARGS="--precision bf16" (python scripts/bench.py --help).
bench:
	$(PYTHON) scripts/bench.py $(ARGS)

clean:
	rm -rf outputs multirun bench .pytest_cache .ruff_cache data/cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
