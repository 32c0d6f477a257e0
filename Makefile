# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Each creates or refreshes the project's virtual environment first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-ui test lint typecheck unit matrix constraints bench bench-warehouse soak clean system-deps system-venv system-test azurite docs

# The test extra needs partner-center-emulator; [tool.uv.sources] makes uv install it editable
# from ./emulator, so its pyproject.toml is a dependency of the stamp too. The objectstores extra
# (the S3, Azure and GCS filesystems and servers of tests/objectstores) goes into this venv only:
# the matrix venvs install the test extra alone. So does the warehouses extra (the hooks and
# drivers of tests/warehouse); its mysqlclient compiles against libmariadb-dev (system-deps build).
# And the browser extra (Playwright, which tests/system/test_browser.py drives Debian's
# chromium-headless-shell with; the system venv does not need it).
$(STAMP): pyproject.toml emulator/pyproject.toml Makefile
	@bash .ci/system-deps build
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade uv
	@$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,objectstores,warehouses,docs,browser]'
	@touch $(STAMP)

# azurite, Microsoft's Azure Storage emulator, for the object-store tests (tests/objectstores): an
# npm package, installed into .tools/azurite with the machine's Node.js (`.ci/system-deps node`
# installs Debian's if there is none). 3.35.0 is the last release whose engines accept Node 20.
AZURITE_VERSION := 3.35.0
AZURITE_STAMP := .tools/azurite/.installed-$(AZURITE_VERSION)

$(AZURITE_STAMP):
	@bash .ci/system-deps node
	@rm -rf .tools/azurite
	@npm install --prefix .tools/azurite --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION) > /dev/null
	@touch $(AZURITE_STAMP)

azurite: $(AZURITE_STAMP)

# The demo runs Airflow's own scheduler, dag-processor, triggerer and api-server (LocalExecutor,
# SQLite) under .demo/run/; demo-ui then leaves them (and the UI) running until Ctrl-C.
demo: $(STAMP)
	$(BIN)/python -m example_dags.run_demo

demo-ui: $(STAMP)
	$(BIN)/python -m example_dags.run_demo --keep-ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers (pytest-xdist), one per core of the CI machine; UNIT_WORKERS=0 runs in one process.
UNIT_WORKERS ?= 2
# system-deps first: tests/warehouse start PostgreSQL and MariaDB (Debian's packages).
unit: system-deps $(STAMP) $(AZURITE_STAMP)
	$(BIN)/pytest -n $(UNIT_WORKERS) --dist worksteal

# The support matrix (docs/support-matrix.md, declared in tests/matrix/combinations.py): every
# other supported Airflow x Python combination in its own venv, .venv-matrix/<combination>, under
# the constraints kept in constraints/ (`make constraints` regenerates them after a dependency
# change), running the unit tests and a dag.test() of every example DAG; two at once (MATRIX_ARGS,
# e.g. "--jobs 1" or "--only airflow-3.1-py3.10", are passed on). It ends with a pass-count table.
matrix: $(STAMP)
	$(BIN)/python tests/matrix/run.py $(MATRIX_ARGS)

constraints: $(STAMP)
	$(BIN)/python tests/matrix/constraints.py

# The docs site (docs/index.md, "About these docs"): Sphinx reads docs/*.md with myst-parser and
# writes the API reference from the source with sphinx-autoapi, into docs/_build/html (open its
# index.html). Warnings are errors: a link to a missing page, heading, image or repository file
# fails the build. -E: a fresh environment every time, so no page's warnings are skipped as cached.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -E -q -b html -d docs/_build/doctrees docs docs/_build/html

# The whole suite: static checks, the docs build, the unit/integration tests on the main
# combination (.venv), the matrix of the other combinations, then the system suite.
test: lint typecheck docs unit matrix system-test

# The benchmarks run in their own environment: the peers they compare with (HttpOperator, dlt)
# must never become dependencies of the provider. BENCH_ARGS, e.g. "--quick", are passed on.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml emulator/pyproject.toml Makefile
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade uv
	@$(BENCH_VENV)/bin/uv pip install --quiet --python $(BENCH_VENV)/bin/python -e '.[bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.warehouse $(WAREHOUSE_ARGS)

# The warehouse loads alone (docs/performance.md, "W1"): 200,000 referrals into SQLite, DuckDB,
# Delta Lake, PostgreSQL and MariaDB (Debian's servers, started on free ports) beside insert_rows
# and dlt: an hour or more on a busy 2-core machine. WAREHOUSE_ARGS, e.g. "--quick", are passed on.
bench-warehouse: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.warehouse $(WAREHOUSE_ARGS)

# The soak (docs/performance.md, "Soak"): a real triggerer and one interpreter through thousands of
# token rotations in accelerated time (about 15 min); SOAK_ARGS, e.g. "--rotations 300", are passed on.
soak: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.soak.run $(SOAK_ARGS)

# The system suite (tests/system/): a real deployment (PostgreSQL, redis, scheduler, dag-processor,
# triggerer, api-server, LocalExecutor then CeleryExecutor) with the provider installed from its
# built wheel into its own venv, .venv-system, never editable (tests/system/requirements.txt pins
# Airflow and what it runs with). The wheel is rebuilt every time: it must be what the tree holds.
SYSTEM_VENV := .venv-system
SYSTEM_DIST := .dist-system

system-deps:
	@bash .ci/system-deps

system-venv: $(STAMP)
	@rm -rf $(SYSTEM_DIST)
	@$(BIN)/uv build --quiet --wheel --out-dir $(SYSTEM_DIST) .
	@test -x $(SYSTEM_VENV)/bin/python || $(BIN)/uv venv --quiet --python $(PYTHON) $(SYSTEM_VENV)
	@$(BIN)/uv pip install --quiet --python $(SYSTEM_VENV)/bin/python --reinstall-package airflow-provider-partner \
		-r tests/system/requirements.txt $(SYSTEM_DIST)/*.whl

system-test: system-deps system-venv
	PARTNER_CENTER_SYSTEM_TESTS=1 PARTNER_CENTER_SYSTEM_VENV=$(SYSTEM_VENV) $(BIN)/pytest tests/system $(SYSTEM_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .venv-matrix $(SYSTEM_VENV) $(SYSTEM_DIST) .tools .demo .mypy_cache .ruff_cache docs/_build
