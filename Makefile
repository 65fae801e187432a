# Two commands do all the set-up: `make run` runs the bot, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint emulators offers doctor clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot storage tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

emulators: $(STAMP)
	$(BIN)/python -m tests.emulators

doctor: $(STAMP)
	$(BIN)/python -m bot doctor

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
