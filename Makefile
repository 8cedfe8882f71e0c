# One virtualenv: `make install` (and run, demo) puts the daemon's runtime in it; `make test`
# adds the dev tools (pytest, ruff, mypy, a Matrix homeserver) on top.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
RUNTIME := $(VENV)/.runtime-$(SUM)
DEV := $(VENV)/.dev-$(SUM)
# Without its declared dependencies: stanza and spaCy (and torch under them, 1.5 GB) serve
# `argostranslate.translate`, which news-monitor never imports. What `argostranslate.package`
# imports is in pyproject.toml's dependencies. README.md "Run as a service" repeats this line.
ARGOS := argostranslate>=1.11,<1.12
# CTranslate2's Python extension ships with its debug symbols: 68 of its 70 MB. Stripping them
# (code and data untouched; the W^X and translation tests run on the stripped file) keeps the
# runtime virtualenv near 400 MB (421 MB with the PostgreSQL driver, psycopg, 13 MB, and
# uvloop, 14 MB).
# Skipped where binutils' strip is missing.
STRIP_CT2 := command -v strip >/dev/null && strip --strip-debug $(VENV)/lib/python3*/site-packages/ctranslate2/_ext*.so || true

.PHONY: install install-dev run test lint typecheck pytest bench bench-quick bench-poll clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps '$(ARGOS)'
	$(STRIP_CT2)
	rm -f $(VENV)/.runtime-* && touch $@

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.dev-* && touch $@

install: $(RUNTIME)

install-dev: $(DEV)

run: install
	$(BIN)/news-monitor --config config.yaml run

demo: install
	$(BIN)/news-monitor demo

lint: install-dev
	$(BIN)/ruff format --check monitor tests bench scripts
	$(BIN)/ruff check monitor tests bench scripts

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest -q

test: lint typecheck pytest

# Side by side with rss2email and feed2exec (installed by the bench into bench/.venvs/).
bench: install-dev
	$(BIN)/python bench/peers.py

bench-quick: install-dev
	$(BIN)/python bench/peers.py --quick

bench-poll: install-dev
	$(BIN)/python bench/poll_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
