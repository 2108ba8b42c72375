# The two commands: `make serve` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test lint bench-engine serve clean

# The environment, rebuilt whenever the project's dependencies change.
$(VENV): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)

lint: $(VENV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks compare against named peers in one run; torch (CPU build) only here.
bench-engine: $(VENV)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/engine.py $(BENCH_ARGS)

serve: $(VENV)
	@echo "The HTTP service is being built (issue #3); the engine is usable as a library today:"
	@echo "  $(BIN)/python -c 'import engine; help(engine)'"
	@exit 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
