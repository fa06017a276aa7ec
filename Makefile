# CertDesk: `make run` starts the portal beside the Entrust sandbox; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs: `run` needs CertDesk alone, test/lint/format/bench the dev extra as well. The dev
# install also satisfies `run`, so neither order of `make run` and `make test` installs twice.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# Editable builds warn about same-named folders in the working directory: expected here. Every
# install takes the versions of constraints.txt, those the tests passed with.
PIP := PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -c constraints.txt

.PHONY: run test lint format bench install clean

$(DEV_STAMP): pyproject.toml setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

# An up-to-date dev install serves `run` too; otherwise install CertDesk without the dev extra.
$(RUN_STAMP): pyproject.toml setup.py constraints.txt
	@[ $(DEV_STAMP) -nt pyproject.toml ] && [ $(DEV_STAMP) -nt setup.py ] \
		&& [ $(DEV_STAMP) -nt constraints.txt ] || { \
		test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
		echo "Installing CertDesk into $(VENV) ..."; \
		$(PIP) --upgrade pip && $(PIP) -e .; }
	@touch $(RUN_STAMP)

install: $(DEV_STAMP)

run: $(RUN_STAMP)
	@$(BIN)/python scripts/run_demo.py

# Under CI=true (or PG=1) the database tests run a second time, on a throwaway PostgreSQL cluster.
PG_TESTS := tests/views tests/unit tests/integration tests/reliability/test_access_matrix.py \
	tests/reliability/test_audit_matrix.py

test: $(DEV_STAMP)
	scripts/ensure-system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	@if [ "$${CI:-}" = "true" ] || [ "$${PG:-}" = "1" ]; then \
		echo "== the database tests again, on PostgreSQL"; \
		CERTDESK_TEST_DB=postgresql $(BIN)/pytest $(PG_TESTS); \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark beside its baseline: bench/results.json and a Markdown table (about 11 minutes).
# QUICK=1: a smoke run of a few minutes at small sizes (bench/out/results-quick.json).
bench: $(DEV_STAMP)
	$(BIN)/python bench/run_all.py $(if $(filter 1 yes true,$(QUICK)),--quick)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache test-artifacts
