# Browser tests (tests/browser): headless Chromium from Debian's packages, driven by Playwright from PyPI.
# Included by the Makefile, which defines VENV and PY. No browser is downloaded from anywhere else.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: browser-deps browser

browser-deps: $(CHROMIUM) $(VENV)/.browser-installed

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-liberation

$(VENV)/.browser-installed: $(VENV)/.installed requirements-browser.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-browser.txt
	@touch $@

# Screenshots of every step land in test-artifacts/browser/.
browser: browser-deps
	$(PY) -m pytest tests/browser
