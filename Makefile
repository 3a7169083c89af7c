# Two commands do all the set-up on a fresh machine:
#   make run    trains the DCGAN on the embedded digits (outputs in runs/dcgan)
#   make test   runs the whole test suite once per backend: tensorflow, torch, jax
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BACKENDS ?= tensorflow torch jax
# pytest-xdist workers per backend pass (test files are dealt out whole: a module's fixtures run once);
# WORKERS=0 runs in one process.
WORKERS ?= 2

.PHONY: run test lint benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# torch 2.13.0 first: it is the local CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e ".[all-cpu,test]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m recipes.dcgan $(ARGS)

test: $(VENV)/.installed
	set -e; for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS); \
	done

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/dcgan_steps.py

clean:
	rm -rf $(VENV) runs .pytest_cache
