# nhs_cm.remediation - the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COLL_LINK := .collections/ansible_collections/nhs_cm/remediation
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The checkout's collection (`make install` links it into .collections/). ansible.cfg sets no
# collections path, so that AWX sees an installed collection when it runs this repository.
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Quality gates (docs/quality.md): their tools live in a venv of their own.
QA_VENV := .venv-qa
QA_STAMP := $(QA_VENV)/.installed
GATE := tools/gate.sh

.PHONY: install demo test lint unit integration clean help
.PHONY: qa-install get-pip build sanity units galaxy ruff ansible-lint shellcheck tarball galaxy-importer ansible-doc

help:
	@echo "make demo   - audit an emulated estate of 20 Windows desktops over WinRM (NTLM)"
	@echo "make demo TRANSPORT=kerberos - the same as a domain estate, with a real MIT Kerberos KDC"
	@echo "make test   - run every test (installs what it needs into .venv first)"
	@echo "make install, make lint, make unit, make integration, make test-store, make clean"
	@echo "make bench [N=200] - benchmark the audit against an ansible.windows baseline (benchmarks/README.md)"
	@echo "gates (make test runs them all): make lint (ruff, ansible-lint), make sanity, make units, make galaxy,"
	@echo "  make docs (the antsibull-docs docsite), make test-matrix (the smoke path under ansible-core 2.16 to 2.19)"

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

# `make demo` speaks NTLM and needs nothing from Debian; TRANSPORT=kerberos (or basic) on the command
# line picks another (the bench's TRANSPORT default below does not apply to the demo).
DEMO_TRANSPORT = $(if $(filter file default undefined,$(origin TRANSPORT)),ntlm,$(TRANSPORT))
demo: install $(if $(filter kerberos,$(DEMO_TRANSPORT)),kerberos)
	$(PY) tools/demo.py --transport $(DEMO_TRANSPORT)

# `make bench [N=200] [FORKS=50] [BASELINE_HOSTS=M] [TRANSPORT=basic|ntlm] [SCALING=100,200,400] [REMEDIATE_HOSTS=30]`:
# the audit against an ansible.windows baseline and a raw floor (benchmarks/README.md); not in `make test`.
N ?= 200
FORKS ?= 50
BASELINE_HOSTS ?= 0
TRANSPORT ?= basic
SCALING ?= 100,200,400
REMEDIATE_HOSTS ?= 30
# The results store (benchmarks/store.py): runs of STORE_HOSTS hosts, STORE_RUNS of them, on each backend.
STORE_HOSTS ?= 10000
STORE_RUNS ?= 90
STORE_BACKENDS ?= sqlite,postgresql
.PHONY: bench
bench: install postgresql
	$(PY) benchmarks/run.py --hosts $(N) --forks $(FORKS) --baseline-hosts $(BASELINE_HOSTS) \
		--transport $(TRANSPORT) --scaling '$(SCALING)' --remediate-hosts $(REMEDIATE_HOSTS) \
		--store-hosts $(STORE_HOSTS) --store-runs $(STORE_RUNS) --store-backends '$(STORE_BACKENDS)'

lint: ruff ansible-lint shellcheck

ruff: install
	@$(GATE) ruff $(VENV)/bin/ruff check plugins tests emulator tools

ansible-lint: qa-install
	@$(GATE) ansible-lint tools/qa.sh ansible-lint

shellcheck: qa-install
	@$(GATE) shellcheck $(QA_VENV)/bin/shellcheck .ci/run $(wildcard tools/*.sh)

unit: install
	$(PY) -m pytest -q tests/unit emulator/tests

integration: install
	$(PY) -m pytest -q tests/integration

test: install lint sanity units galaxy
	@$(GATE) pytest $(PY) -m pytest -q -n 2 tests/unit emulator/tests tests/integration

qa-install: $(QA_STAMP) $(COLL_LINK)

$(QA_STAMP): requirements-qa.txt requirements.txt
	$(PYTHON) -m venv $(QA_VENV)
	$(QA_VENV)/bin/python -m pip install --quiet -r requirements-qa.txt -c requirements.txt
	@touch $@

# ansible-test bootstraps pip in its venvs with a script it cannot download here.
get-pip: qa-install
	@tools/qa.sh get-pip

# The tarball in build/, unpacked at build/ansible_collections/nhs_cm/remediation for ansible-test.
build: qa-install
	@$(GATE) build tools/qa.sh build

sanity: build get-pip
	@$(GATE) sanity tools/qa.sh sanity

units: build get-pip
	@$(GATE) units tools/qa.sh units

galaxy: tarball galaxy-importer ansible-doc

tarball: install
	@$(GATE) tarball $(PY) -m pytest -q -p no:cacheprovider tests/qa

galaxy-importer: build
	@$(GATE) galaxy-importer tools/qa.sh importer

ansible-doc: build
	@$(GATE) ansible-doc tools/qa.sh docs

clean:
	rm -rf $(VENV) .collections reports .pytest_cache .ruff_cache .awx
	rm -rf $(QA_VENV) build

# Debian's chromium renders report.html in tests/integration/test_reports_html.py. CI starts on a
# clean machine, so the test targets install it; nothing is done when chromium is on PATH.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
test: chromium
integration: chromium
# Molecule (molecule/, docs/testing-on-windows.md): a scenario per role against emulated hosts, with
# testinfra verify tests over WinRM; `make test-windows INVENTORY=inv.yml` runs the same verify
# tests against real Windows PCs. Not in `make test` (about 3 minutes). Tools in .venv-molecule.
MOL_VENV := .venv-molecule
MOL_STAMP := $(MOL_VENV)/.installed
MOL_ENV := PATH="$(CURDIR)/$(MOL_VENV)/bin:$$PATH" MOLECULE_GLOB='molecule/*/molecule.yml'
VERIFY_TESTS := $(wildcard molecule/*/tests)
.PHONY: molecule molecule-install test-windows clean-molecule

molecule-install: $(MOL_STAMP) $(COLL_LINK)

$(MOL_STAMP): requirements-molecule.txt requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(MOL_VENV)
	$(MOL_VENV)/bin/python -m pip install --quiet -r requirements.txt -r requirements-molecule.txt \
		-c requirements-test.txt
	@touch $@

molecule: install molecule-install
	$(MOL_ENV) $(MOL_VENV)/bin/molecule test --all

test-windows:
	@if [ -z "$(INVENTORY)" ]; then \
		echo "test-windows: skipped, no INVENTORY given: make test-windows INVENTORY=path/to/inventory.yml" \
			"(docs/testing-on-windows.md)"; \
	else \
		$(MAKE) --no-print-directory molecule-install && \
		$(MOL_ENV) $(MOL_VENV)/bin/python -m pytest -q -p no:cacheprovider \
			--ansible-inventory '$(INVENTORY)' $(VERIFY_TESTS); \
	fi

clean-molecule:
	rm -rf $(MOL_VENV)
clean: clean-molecule
# The molecule scenarios' playbooks and tests pass the same linters as the rest (part of `make lint`).
.PHONY: lint-molecule
lint-molecule: install qa-install
	@$(GATE) ruff-molecule $(VENV)/bin/ruff check molecule
	@$(GATE) ansible-lint-molecule env ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg \
		$(QA_VENV)/bin/ansible-lint --profile production --strict molecule
lint: lint-molecule
# Kerberos (a domain estate; tests/integration/test_kerberos*.py, make demo TRANSPORT=kerberos):
# Debian's MIT Kerberos (krb5kdc, kdb5_util and kadmin.local for the tests' KDC, kinit for Ansible,
# the headers and compiler that pykerberos and gssapi build with), then those two into .venv from
# requirements-kerberos.txt. apt-get runs only when something is missing. `make test` needs it.
KRB_PACKAGES := krb5-kdc krb5-admin-server krb5-user libkrb5-dev gcc
KRB_TOOLS := krb5kdc kdb5_util kadmin.local kinit klist krb5-config gcc
KRB_STAMP := $(VENV)/.kerberos-installed
.PHONY: kerberos kerberos-os
kerberos: kerberos-os $(KRB_STAMP)

kerberos-os:
	@need=; for tool in $(KRB_TOOLS); do \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $$tool >/dev/null 2>&1 || need="$(KRB_PACKAGES)"; done; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		|| need="$$need python3-dev"; \
	if [ -n "$$need" ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			-o DPkg::Lock::Timeout=300 $$need; \
	fi

$(KRB_STAMP): requirements-kerberos.txt | kerberos-os $(STAMP)
	$(PY) -m pip install --quiet -r requirements-kerberos.txt -c requirements.txt
	@touch $@
test: kerberos
integration: kerberos
# awx.awx (from the `ansible` wheel of requirements-awx.txt, unpacked into .awx/): the argument
# specs that tests/integration/test_awx_load.py checks awx/*.yml against.
AWX_STAMP := .awx/ansible_collections/awx/awx/MANIFEST.json
.PHONY: awx-collection
awx-collection: $(AWX_STAMP)
$(AWX_STAMP): requirements-awx.txt | $(STAMP)
	$(PY) tools/awx_collection.py .awx
test: awx-collection
integration: awx-collection
# `make test-matrix`: the smoke path (audit, remediate --check --diff, remediate, rollback) under
# every ansible-core minor that meta/runtime.yml declares, against emulated hosts
# (tests/matrix/). One venv per minor in .venv-matrix/<version>, made from exactly what a user's
# pip line installs (ansible-core plus meta/ee-requirements.txt, pip's cache kept); 2.19 is
# .venv's own pinned ansible-core. Part of `make test`.
MATRIX_CORES := 2.16.20 2.17.14 2.18.19
MATRIX_VENV := .venv-matrix
MATRIX_STAMPS := $(foreach core,$(MATRIX_CORES),$(MATRIX_VENV)/$(core)/.installed)
.PHONY: matrix-install test-matrix
matrix-install: $(MATRIX_STAMPS)
$(MATRIX_VENV)/%/.installed: meta/ee-requirements.txt
	rm -rf $(MATRIX_VENV)/$*
	$(PYTHON) -m venv $(MATRIX_VENV)/$*
	$(MATRIX_VENV)/$*/bin/python -m pip install --quiet "ansible-core==$*" -r meta/ee-requirements.txt
	@touch $@
test-matrix: install matrix-install
	@$(GATE) test-matrix $(PY) -m pytest -q -p no:cacheprovider -n 2 tests/matrix
test: test-matrix
.PHONY: clean-matrix
clean-matrix:
	rm -rf $(MATRIX_VENV)
clean: clean-matrix
# `make docs`: the collection's docsite with antsibull-docs (docs/preview/ holds its Sphinx
# configuration; docs/docsite/ the collection's extra pages, as collections keep them). Lints the
# collection's docs, renders every plugin and role to RST, builds HTML into build/docsite/html
# with every Sphinx warning an error. Part of `make test`. Tools in .venv-docs.
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed
DOCSITE := build/docsite
.PHONY: docs docs-install clean-docs
docs-install: $(DOCS_STAMP) $(COLL_LINK)
$(DOCS_STAMP): requirements-docs.txt requirements.txt
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet -r requirements-docs.txt -c requirements.txt
	@touch $@
docs: docs-install
	@$(GATE) docs tools/docsite.sh $(DOCS_VENV) $(DOCSITE)
test: docs
clean-docs:
	rm -rf $(DOCS_VENV) $(DOCSITE)
clean: clean-docs
# Debian's PostgreSQL server: the results-store tests (tests/integration/test_store*.py) start their
# own on a loopback port in a temporary folder (tests/integration/pgserver.py) and stop it by its
# pid. CI starts on a clean machine, so the test targets install it; nothing is done when it is there.
.PHONY: postgresql test-store
postgresql:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; }
test: postgresql
integration: postgresql
# The results store's tests alone, on SQLite and PostgreSQL (docs/history.md); about 2 minutes.
test-store: install postgresql
	$(PY) -m pytest -q tests/unit/plugins/plugin_utils/_history/test_history.py tests/integration/test_store.py tests/integration/test_store_history.py
