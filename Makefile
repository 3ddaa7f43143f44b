# mailkeep — the two commands a new user needs:
#   make run    start a working server (embedded store, demo account, ports printed)
#   make test   install what the tests need and run every check
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data

.PHONY: run test check lint typecheck pytest test-deps bench fuzz stress clean

$(BIN)/mailkeep: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/mailkeep
	$(BIN)/mailkeep --data $(DATA) init --demo
	exec $(BIN)/mailkeep --data $(DATA) serve

test: $(BIN)/mailkeep test-deps lint typecheck pytest

test-deps:
	scripts/test-deps.sh

lint: $(BIN)/mailkeep
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(BIN)/mailkeep
	$(BIN)/mypy

pytest: $(BIN)/mailkeep
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# test-deps: Dovecot's packages and mbsync (isync) for the sync rows, on a fresh machine too.
bench: $(BIN)/mailkeep test-deps
	$(BIN)/python -m bench $(BENCH_ARGS)

fuzz: $(BIN)/mailkeep
	MAILKEEP_FUZZ=long $(BIN)/pytest -n 2 -m fuzz $(PYTEST_ARGS)

stress: $(BIN)/mailkeep
	MAILKEEP_STRESS=long $(BIN)/pytest -n 2 tests/stress

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
