# nascost — two commands do all set-up on a fresh machine:
#   make run    create .venv, install, start the server on the embedded default store,
#               show it answering (a bundled example analyzed over gRPC), keep serving
#   make test   create/update .venv, then ruff, mypy and pytest
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 50051
DATA_DIR ?= $(CURDIR)/data
# The one install command (the Dockerfile uses the same extras).
INSTALL := $(PY) -m pip install --disable-pip-version-check -q -e ".[dev]"
STAMP  := $(VENV)/.installed

.PHONY: venv run test lint typecheck pytest proto bench clean install-server

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(INSTALL)
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nascost serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --demo

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check server client predictors measurements tests benchmarks examples

# mypy sees the folders as the nascost.* packages they install as, through a link tree.
typecheck: $(STAMP)
	@rm -rf $(VENV)/typecheck && mkdir -p $(VENV)/typecheck/nascost
	@for p in server client predictors measurements; do ln -s $(CURDIR)/$$p $(VENV)/typecheck/nascost/$$p; done
	@ln -s $(CURDIR)/proto/nascost/v1 $(VENV)/typecheck/nascost/v1
	cd $(VENV)/typecheck && MYPYPATH=. $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml -p nascost.server -p nascost.client -p nascost.predictors -p nascost.measurements

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

# Regenerate nascost.v1 from proto/ (generated code is committed; tests check it is current).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto --grpc_python_out=proto proto/nascost/v1/*.proto

# What the Dockerfile installs: the server without the dev tools.
install-server: | $(PY)
	$(PY) -m pip install --no-cache-dir ".[server]"

bench: $(STAMP)
	$(PY) benchmarks/bench_analyze.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
