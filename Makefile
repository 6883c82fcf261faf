# Two entry points for a fresh machine (README's quickstart): `make demo` and `make test`.
# Both create the virtual environment in $(VENV) on first use and install the package with
# every extra plus the example plugin, exactly as README's "Install" section says.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test install clean-venv

$(BIN)/.loyaltykit-installed: pyproject.toml plugins/loyaltykit-engagement/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]" -e plugins/loyaltykit-engagement
	touch $@

install: $(BIN)/.loyaltykit-installed

demo: install
	$(BIN)/loyaltykit analyze --dataset cdnow --out results

test: install
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/check

clean-venv:
	rm -rf $(VENV)
