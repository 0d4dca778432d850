# Foresight: two commands for people (demo, test); bootstrap is shared by both.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: bootstrap demo test unit e2e proto docs lint clean

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(VENV)/bin/foresight lab run demo
	$(VENV)/bin/foresight lab run slices
	$(VENV)/bin/foresight lab run te
	$(VENV)/bin/foresight lab run stitching
	$(VENV)/bin/foresight lab run peering
	$(VENV)/bin/foresight lab run provisioning

test: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) scripts/gen_docs.py --check
	$(PY) -m pytest tests

unit: bootstrap
	$(PY) -m pytest tests/unit

e2e: bootstrap
	$(PY) -m pytest tests/e2e

docs: bootstrap
	$(PY) scripts/gen_docs.py

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

proto: bootstrap
	$(PY) -m proto.generate

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
