# The two commands: `make serve` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test lint browser bench-engine bench-predict bench-service serve migrate clean

# The environment, brought up to date whenever the project's dependencies change: what
# serving needs (and scikit-learn, whose data sets the Quickstart uses), or all the tests need.
# The stamps record what was installed from which pyproject.toml.
SERVE_STAMP := $(VENV)/.installed-serve
TEST_STAMP := $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sklearn]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(SERVE_STAMP)

venv: $(TEST_STAMP)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The browser tests drive Debian's chromium; install it when it is missing (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The whole suite: the tests marked `serial` (timing-sensitive scenarios with real processes)
# run alone after the rest, which runs on every core. Then the engine's tests again under a
# second OpenBLAS kernel chosen for this CPU: nothing that must be exact (a prediction, a
# resumed checkpoint) may depend on it. Exit 5 is pytest's "nothing selected" (PYTEST_ARGS).
# The serial part collects only the files that mark tests serial (collecting all ~2,100 tests
# to pick 34 costs ~10 s), unless PYTEST_ARGS names its own selection.
PYTEST := $(BIN)/pytest
SERIAL_FILES = $(if $(PYTEST_ARGS),,$(shell grep -rl --include='test_*.py' 'pytest.mark.serial' tests))
test: lint browser
	$(PYTEST) -n auto --dist worksteal -m "not serial" --durations=25 $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PYTEST) -m serial --durations=10 $(PYTEST_ARGS) $(SERIAL_FILES) || [ $$? -eq 5 ]
	kernel=$$($(BIN)/python .ci/second_blas_kernel.py) && \
	  OPENBLAS_CORETYPE=$$kernel $(PYTEST) -n auto -m "not slow" tests/engine

# Benchmarks compare against named peers in one run; torch (CPU build) only here.
bench-engine: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/engine.py $(BENCH_ARGS)

# What batch-invariant predictions cost against the BLAS forward pass and scikit-learn.
bench-predict: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/predict.py $(BENCH_ARGS)

# The real service (uvicorn + workers on 127.0.0.1) on SQLite and PostgreSQL against its peers;
# e.g. BENCH_ARGS="--quick" or "--only predict --databases sqlite --markdown".
bench-service: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/service.py $(BENCH_ARGS)

# The API on 127.0.0.1:8000 and one worker per core, on the SQLite file ./backprop.db
# (BACKPROP_* variables change that, e.g. BACKPROP_PORT; SERVE_ARGS adds `backprop serve` options).
# exec: Ctrl-C goes straight to `backprop serve`, which stops its workers cleanly.
serve: $(SERVE_STAMP)
	exec $(BIN)/backprop serve $(SERVE_ARGS)

# The database schema alone, at BACKPROP_DATABASE_URL (serve does this itself).
migrate: $(SERVE_STAMP)
	$(BIN)/backprop migrate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
