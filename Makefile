# A new user needs two commands: `make demo` and `make test`. Each creates .venv on first use.
# Python 3.12+ when the machine has it: coverage then measures through sys.monitoring, which
# leaves Textual's code untraced, so `make test` runs the app tests at full speed (3.11's tracer
# doubles them). Any Python from 3.11 on works.
PY312_CANDIDATES := python3.12 python3.13 $(wildcard $(HOME)/.pyenv/versions/3.1[23]*/bin/python3)
PYTHON ?= $(firstword $(foreach p,$(PY312_CANDIDATES),$(shell $(p) -c 'print("$(p)")' 2>/dev/null)) python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := stackspot_tui tests benchmarks

.PHONY: demo test test-fast test-deep check format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/stackspot-tui --demo

# Byte-code caches on, whatever the environment says: without them every process (both workers
# and each CLI the tests start) recompiles the package and pytest rewrites every test module again.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

# The whole suite on both cores, then line coverage of the package, the CLI and simulator
# processes the tests start included (coverage's subprocess patch, pyproject.toml).
test: $(STAMP)
	@rm -f .coverage .coverage.*
	$(TEST_ENV) $(BIN)/python -m pytest -q -n 2 --dist loadgroup --cov --cov-report=term-missing:skip-covered

# Unit tests only: no app (Pilot) tests, no real processes, fewer property examples (`make test`
# draws the full number): a quick answer while working.
test-fast: $(STAMP)
	HYPOTHESIS_PROFILE=fast STACKSPOT_FUZZ_EXAMPLES=8 $(TEST_ENV) $(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not e2e and not app"

# The thorough search: 1,000 examples per property test and 500 damaged histories (minutes).
test-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep STACKSPOT_FUZZ_EXAMPLES=500 $(TEST_ENV) $(BIN)/python -m pytest -q -n 2 --dist loadgroup

# Lint, formatting, types and the layer rules between packages.
check: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

# Every benchmark, then benchmarks/results.json and docs/performance.md (generated from it).
# ONLY=history,export measures those parts and keeps the others' stored results.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) build *.egg-info .coverage .coverage.* htmlcov
