# nhs_cm.remediation - the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COLL_LINK := .collections/ansible_collections/nhs_cm/remediation
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo test lint unit integration clean help

help:
	@echo "make demo   - audit an emulated estate of 20 Windows desktops over WinRM"
	@echo "make test   - run every test (installs what it needs into .venv first)"
	@echo "make install, make lint, make unit, make integration, make clean"

install: $(STAMP) $(COLL_LINK)

$(STAMP): requirements.txt requirements-test.txt emulator/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e emulator
	@touch $@

$(COLL_LINK):
	@mkdir -p $(dir $(COLL_LINK))
	@ln -sfn ../../.. $(COLL_LINK)

demo: install
	$(PY) tools/demo.py

lint: install
	$(VENV)/bin/ruff check plugins tests emulator tools

unit: install
	$(PY) -m pytest -q tests/unit emulator/tests

integration: install
	$(PY) -m pytest -q tests/integration

test: install lint
	$(PY) -m pytest -q -n 2 tests/unit emulator/tests tests/integration

clean:
	rm -rf $(VENV) .collections reports .pytest_cache .ruff_cache
