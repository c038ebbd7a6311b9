# Browser tests (tests/browser): headless Chromium from Debian's packages, driven by Playwright from PyPI.
# Included by the Makefile, which defines VENV and PY. No browser is downloaded from anywhere else.
# axe-core (the accessibility checks the tests inject into the page) comes from the npm registry by name and
# pinned version, through npm's own configuration: no lock file, nothing saved beside the code.
CHROMIUM := /usr/bin/chromium
AXE_VERSION := 4.14.1
AXE := $(VENV)/npm/node_modules/axe-core/axe.min.js
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: browser-deps browser

browser-deps: $(CHROMIUM) $(VENV)/.browser-installed $(AXE)

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-liberation

$(VENV)/.browser-installed: $(VENV)/.installed requirements-browser.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-browser.txt
	@touch $@

$(AXE): browser.mk $(VENV)/.installed
	@command -v npm >/dev/null || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; }
	npm install --prefix $(VENV)/npm --no-save --no-package-lock --no-audit --no-fund --silent axe-core@$(AXE_VERSION)
	@touch $@

# Screenshots of every step land in test-artifacts/browser/.
browser: browser-deps
	$(PY) -m pytest tests/browser
