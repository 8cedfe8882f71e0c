# One virtualenv for everything; `make run` and `make test` create it on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run test lint typecheck pytest bench bench-quick bench-poll clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: argostranslate needs it (through stanza), and this exact release is the CPU
# build on this machine's disk; left to the resolver, pip downloads a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/news-monitor --config config.yaml run

demo: install
	$(BIN)/news-monitor demo

lint: install
	$(BIN)/ruff format --check monitor tests bench scripts
	$(BIN)/ruff check monitor tests bench scripts

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

test: lint typecheck pytest

# Side by side with rss2email and feed2exec (installed by the bench into bench/.venvs/).
bench: install
	$(BIN)/python bench/peers.py

bench-quick: install
	$(BIN)/python bench/peers.py --quick

bench-poll: install
	$(BIN)/python bench/poll_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
