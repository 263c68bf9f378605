# govgis — two commands on a fresh Debian 12 machine:
#   make run    install what is missing, start the embedded PostGIS, migrate, load the demo city, serve
#   make test   the same set-up, then the whole test suite against a throw-away database
# GOVGIS_DATABASE_URL=postgresql://... uses an existing PostGIS instead of the embedded cluster.

SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_ENV := DEBIAN_FRONTEND=noninteractive
# Debian packages the service needs, and the ones only the tests and the map's assets need
SERVER_PKGS := postgresql-15 postgresql-15-postgis-3 postgresql-15-pgrouting
TEST_PKGS := gdal-bin chromium fonts-noto-cjk poppler-utils
STAMP := .venv/.installed-$(shell sha1sum pyproject.toml 2>/dev/null | cut -c1-12)

.PHONY: help run test stop deps test-deps node db assets lint check-api

help:
	@echo "make run    — set up everything and serve http://127.0.0.1:8000 (map at /map)"
	@echo "make test   — set up everything and run the test suite"
	@echo "make stop   — stop the embedded PostgreSQL cluster"
	@echo "make check-api — schemathesis over every operation of /api, more examples than the suite"

# --- installation (each step skips itself when already done) ---------------------------------
deps: $(STAMP)
	@missing=""; for p in $(SERVER_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "[govgis] installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_ENV) apt-get install -y -qq $$missing >/dev/null \
	    || { echo "[govgis] ERROR: apt-get failed: install$$missing by hand, or set GOVGIS_DATABASE_URL"; exit 1; }; \
	fi

$(STAMP): pyproject.toml
	@command -v python3.11 >/dev/null || command -v python3 >/dev/null || { echo "[govgis] ERROR: need Python 3.11"; exit 1; }
	@if [ ! -x $(PY) ]; then echo "[govgis] creating virtual environment .venv"; python3 -m venv .venv; fi
	@echo "[govgis] installing Python packages (pinned in pyproject.toml)"
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[test]' || { echo "[govgis] ERROR: pip install failed (see above)"; exit 1; }
	@rm -f .venv/.installed-*; touch $(STAMP)

test-deps: deps node
	@missing=""; for p in $(TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "[govgis] installing Debian packages for the tests:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_ENV) apt-get install -y -qq $$missing >/dev/null \
	    || { echo "[govgis] ERROR: apt-get failed for$$missing"; exit 1; }; \
	fi

# Node.js/npm install the map's front-end packages; any node ≥ 18 on PATH will do, else Debian's.
node:
	@if ! command -v npm >/dev/null; then \
	  echo "[govgis] installing Node.js and npm from Debian (for the map's front-end packages)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_ENV) apt-get install -y -qq nodejs npm >/dev/null \
	    || { echo "[govgis] ERROR: could not install nodejs/npm: install Node.js 18+ by hand"; exit 1; }; \
	fi

assets: deps node
	@if [ -f webmap/assets.py ]; then $(PY) -m webmap.assets; fi

# --- database ---------------------------------------------------------------------------------
db: deps
	@if [ -z "$$GOVGIS_DATABASE_URL" ]; then $(PY) -m gis.cluster start; \
	else echo "[govgis] using GOVGIS_DATABASE_URL (no embedded cluster)"; fi

stop:
	@if [ -x $(PY) ]; then $(PY) -m gis.cluster stop; else echo "[govgis] nothing to stop"; fi

# --- the two commands ---------------------------------------------------------------------------
run: deps db assets
	@.venv/bin/govgis db setup
	@.venv/bin/govgis serve

test: test-deps db assets
	@echo "[govgis] running the test suite (throw-away database on the same server)"
	@.venv/bin/pytest -q $(PYTEST_ARGS)

# the API definition against the running code: schemathesis over every operation with more examples
# per operation than the suite's run (GOVGIS_API_EXAMPLES, default 25 here)
check-api: deps db
	@echo "[govgis] schemathesis over every operation of /api ($${GOVGIS_API_EXAMPLES:-25} examples each)"
	@GOVGIS_API_EXAMPLES=$${GOVGIS_API_EXAMPLES:-25} GOVGIS_TEST_CONTRACT_SESSION=1 .venv/bin/pytest -q tests/contract $(PYTEST_ARGS)

lint: deps
	@.venv/bin/ruff check gis layers api webmap data tests bench
