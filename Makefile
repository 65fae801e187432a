# Two commands do all the set-up: `make run` runs the bot, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint lock emulators offers doctor i18n clean

# Installs exactly the dev lock (pinned, hash-checked), then the project itself without deps.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot

lint: $(STAMP)
	$(BIN)/python tools/lockcheck.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot storage tests benchmarks tools

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

# Re-compile both locks from pyproject.toml (keeping the pins that still fit; `make lock
# LOCK_FLAGS=--upgrade` takes the newest), with uv in a venv of its own, then write the header
# lines `make lint` checks (tools/lockcheck.py). The dev lock is constrained by the runtime one,
# so the two agree on every package they share.
UV_VERSION := 0.13.9
LOCK_TOOLS := $(VENV)/lock-tools
LOCK_COMPILE = $(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock' --quiet $(LOCK_FLAGS)

$(LOCK_TOOLS)/.uv-$(UV_VERSION):
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)' 'packaging>=24'
	touch $@

lock: $(LOCK_TOOLS)/.uv-$(UV_VERSION)
	$(LOCK_COMPILE) -o requirements.lock
	$(LOCK_COMPILE) --extra dev -c requirements.lock -o requirements-dev.lock
	$(LOCK_TOOLS)/bin/python tools/lockcheck.py --write

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
