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

# Azurite, the Azure Storage emulator the `azurite` tests run against (package.json pins it);
# without npm those tests skip, saying why.
NODE_STAMP := node_modules/.installed-stamp

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else echo "npm not found: the Azurite tests will be skipped"; fi

# Bytecode of src/ is compiled first: with PYTHONDONTWRITEBYTECODE set (as on CI machines) no
# process writes it, and each of the many processes the tests start would compile the package
# again (~0.9 s of CPU each). Three pytest workers on two cores: the process-starting tests
# spend much of their time waiting (clean clone: 405 s with two, 363 s with three).
test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m compileall -q src
	$(BIN)/pytest -n 3 --dist loadfile -q

clean:
	rm -rf $(VENV) .pytest_cache
