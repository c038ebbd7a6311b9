# The two commands a newcomer needs: `make run` (the service locally) and `make test` (every check and test).
# Both create their virtual environments and install the pinned packages first.
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
PORT ?= 3000
QBO_PORT ?= 4001
XERO_PORT ?= 4002

.PHONY: setup run test lint typecheck imports template-check unit integration e2e bench clean build-SharedLayer

setup: $(VENV)/.installed $(TOOLS)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (the Lambda runtime in template.yaml); found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@touch $@

run: $(VENV)/.installed
	$(PY) -m infra.local.run --port $(PORT) --qbo-port $(QBO_PORT) --xero-port $(XERO_PORT)

# the installs, then the checks, each group side by side (the machine's two cores), then the tests
test:
	$(MAKE) --no-print-directory -j3 --output-sync=target setup browser-deps
	$(MAKE) --no-print-directory -j4 --output-sync=target lint typecheck imports template-check
	$(PY) -m pytest -n 2 --dist loadfile --durations=20

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

imports: $(VENV)/.installed
	$(VENV)/bin/lint-imports

template-check: $(TOOLS)/.installed
	$(TOOLS)/bin/python infra/template_checks.py

unit integration e2e: $(VENV)/.installed
	$(PY) -m pytest tests/$@

bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(TOOLS) build .aws-sam test-artifacts

include browser.mk

# `sam build` calls this for SharedLayer (BuildMethod: makefile): the shared package and its pinned dependencies.
build-SharedLayer:
	mkdir -p "$(ARTIFACTS_DIR)/python"
	cp -r shared "$(ARTIFACTS_DIR)/python/"
	find "$(ARTIFACTS_DIR)/python/shared" -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m pip install --quiet -r requirements.txt -t "$(ARTIFACTS_DIR)/python" \
		--platform manylinux2014_aarch64 --implementation cp --python-version 3.11 --only-binary=:all:
	@# botocore's data trimmed to the AWS services the functions use, models without documentation (infra/layer_models.py)
	$(PYTHON) -m infra.layer_models "$(ARTIFACTS_DIR)/python"
	@# Lambda's /opt is read-only, so a layer without bytecode is compiled at every cold start. Hash-based
	@# .pyc files (no timestamps) are reproducible; they must come from the runtime's Python, 3.11.
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "build the layer with Python 3.11")'
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)/python"
