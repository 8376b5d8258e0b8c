# Quick start: `make clean-ja` (cleans the bundled sample) and `make test`.
# Both create .venv and install the package on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIPELINE ?= pipelines/ja.yaml
INPUT ?= cleaning/samples/ja_web
OUTPUT ?= out/sample
WORKERS ?=
RUN_ARGS ?=
REPORT_ARGS ?=
PYTEST_ARGS ?=
LABELS ?= ../shared/data/gold/labels
CRAWL ?= ../shared/data/web/cc-main-2023-50_ja_pages.jsonl.gz
# a run over CRAWL, where train-quality finds the labelled pages
CRAWL_RUN ?= out/crawl

.PHONY: clean-ja eval train-rules train-quality report-check test lint format bench bench-quick bench-scale venv clean

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

clean-ja: venv
	$(BIN)/cleaning run $(PIPELINE) --input '$(INPUT)' --output '$(OUTPUT)' $(if $(WORKERS),--workers $(WORKERS)) $(RUN_ARGS)
	$(if $(shell grep -l 'stage: *genres' $(PIPELINE)),$(BIN)/cleaning report '$(OUTPUT)' $(if $(WORKERS),--workers $(WORKERS)) $(REPORT_ARGS))

# How clean a finished run is, against line-labelled pages: the five figures, where content was lost,
# which boilerplate survived, every page line by line (OUTPUT/eval/eval.html). For example:
#   make clean-ja INPUT=../shared/data/web/cc-main-2023-50_ja_pages.jsonl.gz OUTPUT=out/crawl && make eval OUTPUT=out/crawl
eval: venv
	$(BIN)/cleaning eval '$(OUTPUT)' $(LABELS) $(EVAL_ARGS)

# Retrain the rules stage's line and page models (rules/models/) on the gold pages and annotations/pages,
# cross-validated over sites, from a run over the crawl they come from (OUTPUT, made first if missing).
train-rules: venv
	test -f '$(OUTPUT)/summary.json' || $(BIN)/cleaning run $(PIPELINE) --input '$(CRAWL)' --output '$(OUTPUT)' $(RUN_ARGS)
	$(BIN)/cleaning rules train $(LABELS) annotations/pages --run '$(OUTPUT)' --test annotations/heldout

# Retrain the shipped quality model (annotations/model/) on the annotations and the labelled pages of
# annotations/pages, taken as the rules stage of a run over their crawl leaves them (CRAWL_RUN, made
# first if missing). annotations/heldout and the gold pages stay out: they measure it (bench/quality_eval.py).
train-quality: venv
	test -f '$(CRAWL_RUN)/summary.json' || $(BIN)/cleaning run $(PIPELINE) --input '$(CRAWL)' --output '$(CRAWL_RUN)' $(RUN_ARGS)
	$(BIN)/cleaning quality train -a annotations --pages annotations/pages --run '$(CRAWL_RUN)' --quantize --out annotations/model/quality.bin

# The balance report in headless Chromium (Debian's chromium package): loads, sorts, filters,
# opens a cluster; screenshots go to out/report-check/.
report-check: venv
	REQUIRE_BROWSER=1 REPORT_SCREENSHOTS=out/report-check $(BIN)/python -m pytest -q -m browser $(PYTEST_ARGS)

test: venv
	$(BIN)/ruff check cleaning tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check cleaning tests bench
	$(BIN)/ruff format --check cleaning tests bench

format: venv
	$(BIN)/ruff format cleaning tests bench
	$(BIN)/ruff check --fix cleaning tests bench

# Every stage with 1 and all workers on a 200 MB corpus built from ../shared/data/web, and the same
# steps in datatrove and HojiChar (own venv); results in bench/results/<date>-<host>.{json,md}.
bench: venv
	$(BIN)/python bench/pipeline_bench.py $(BENCH_ARGS)

# The before/after guard for a performance change (under 2 minutes once its models are cached):
# compare the ratios of two runs, not their absolute seconds.
bench-quick: venv
	$(BIN)/python bench/pipeline_bench.py --quick $(BENCH_ARGS)

# How each stage's cost grows with the corpus (50, 150, 450 MB with hosts growing, then 20,000 small
# files), and a 1 TB / 64-core projection from it; bench/results/scale-<date>.{json,md}. ~10 minutes
# (about 22 with BENCH_ARGS="--mb 150 450 1200"); --reproject FILE.json recomputes a projection.
bench-scale: venv
	$(BIN)/python bench/scale_bench.py $(BENCH_ARGS)

clean:
	rm -rf out .pytest_cache
