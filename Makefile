# Visceral: the two commands of the README, and a few helpers.
#   make demo   -- create .venv, install, run the main job on built-in demo data
#   make test   -- create .venv, install with test extras (+ Debian packages when root), run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the tests need: dciodvfy (DICOM IOD validator), chromium (renders the demo report).
APT_PACKAGES ?= dicom3tools chromium
APT_PROGRAMS ?= dciodvfy chromium

.PHONY: demo test bench venv system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

system-deps:
	@missing=""; for p in $(APT_PROGRAMS); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages: $(APT_PACKAGES)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "missing programs:$$missing -- install with: sudo apt-get install $(APT_PACKAGES)"; \
	  fi; \
	fi

demo: venv
	$(BIN)/visceral demo visceral-demo

test: venv system-deps
	$(BIN)/python -m pytest

# Benchmarks are scripts, not tests: each runs Visceral and its peers side by side and prints a table.
bench: venv
	-$(BIN)/python -m pip install -q -e ".[bench]"
	-command -v gdcmanon >/dev/null 2>&1 || { [ "$$(id -u)" = "0" ] && apt-get install -y -qq libgdcm-tools >/dev/null; }
	@for f in bench/[a-z]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
