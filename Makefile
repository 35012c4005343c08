# The two commands of the README:
#   make book   - set up .venv, execute every chapter (papermill, default preset), render HTML
#   make test   - set up .venv, run the tests (unit tests + the whole book executed and checked)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PRESET ?= cpu
SEED   ?= 0

.PHONY: install assets browser book test unit chapter chapter-args bench gpu-check robustness clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned to the CPU build on this machine's disk: a bare `pip install torch`
	# pulls a multi-GB CUDA build. Elsewhere any torch >= 2.1 works.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[book,test]"
	touch $(STAMP)

install: $(STAMP)

# MathJax from the npm registry, served with the book so math renders offline
# (tools/run_book.py copies it into the book's _static; without it the book falls back to the CDN).
node_modules/mathjax/es5/tex-mml-chtml.js: package.json package-lock.json
	command -v npm >/dev/null && npm ci --no-audit --no-fund || echo "npm not found: the book will load MathJax from its CDN"

assets: node_modules/mathjax/es5/tex-mml-chtml.js

# Headless Chromium + ChromeDriver for the browser test (Debian packages). Skipped, with a
# message, where they cannot be installed; the browser test then says why it is skipped.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	  || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	      && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "chromium/chromedriver not installed (needs apt-get as root): the browser test will be skipped")

book: install assets
	$(BIN)/python tools/run_book.py --preset $(PRESET) --seed $(SEED)

test: install assets browser
	$(BIN)/python -m pytest -ra

unit: install
	$(BIN)/python -m pytest -ra -m "not book"

# make chapter NB=associative_vs_geometric PRESET=cpu SEED=1
chapter-args:
	@test -n "$(NB)" || { echo "usage: make chapter NB=<chapter file stem> [PRESET=cpu] [SEED=0]  (chapters: book/*.ipynb)" >&2; exit 2; }

chapter: chapter-args install
	$(BIN)/python tools/run_book.py --only $(NB) --preset $(PRESET) --seed $(SEED) --no-html

# Every chapter for seeds 0-4 (and seed 0 in fp32), one chapter at a time, resumable: writes
# data/robustness.json (about 90 min on 2 cores; run it again to continue where it stopped).
robustness: install
	$(BIN)/python tools/robustness.py

bench: install
	$(BIN)/python benchmarks/throughput.py

# On a GPU: tools/gpu_check.py within ~8 minutes, one JSON per part under OUT (default gpu_results/)
gpu-check: install
	$(BIN)/python tools/gpu_check.py --out $(or $(OUT),gpu_results)

clean:
	rm -rf build book/_build
