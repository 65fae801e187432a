# Two commands do all the set-up: `make run` runs the bot, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint emulators offers doctor i18n clean

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
	@$(BIN)/python -m tests.emulators

doctor: $(STAMP)
	$(BIN)/python -m bot doctor

# Re-extract user-visible text and merge it into every language's catalog (then translate).
i18n: $(STAMP)
	$(BIN)/pybabel extract --no-default-keywords -k '_:1,2,3t' -k '_:1,2,4t' -k '_:1,1t' -k __ \
		--no-location --omit-header -o bot/locales/messages.pot bot
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -i bot/locales/messages.pot -d bot/locales -D messages

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
