# The two commands of the README: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA_DIR ?= ./data
PORT ?= 8000

.PHONY: run test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/industrydata demo --data-dir $(DATA_DIR) --port $(PORT)
	$(BIN)/industrydata serve --data-dir $(DATA_DIR) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -q

clean:
	rm -rf $(VENV) .pytest_cache
