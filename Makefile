# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
# DuckDB 1.1 beside the project's, for the test that reads the BI snapshot as BI tools' drivers do
DUCKDB1_VERSION := 1.1.3
DUCKDB1 := .duckdb1
DUCKDB1_STAMP := $(DUCKDB1)/.installed-$(DUCKDB1_VERSION)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test dev bench validate lint clean

install: $(STAMP) $(DUCKDB1_STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH, or make PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# its own folder, never on the venv's path: only a test's subprocess puts it first (PYTHONPATH)
$(DUCKDB1_STAMP): | $(STAMP)
	rm -rf $(DUCKDB1)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-warn-conflicts --no-deps \
		--target $(DUCKDB1) duckdb==$(DUCKDB1_VERSION)
	touch $@

demo: install
	$(BIN)/crm validate
	$(BIN)/crm demo

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

dev: install
	$(BIN)/crm dev

validate: install
	$(BIN)/crm validate

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install
	$(BIN)/ruff check crm_assets tests benchmarks

clean:
	rm -rf warehouse .dagster_home target
