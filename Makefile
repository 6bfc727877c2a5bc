# Two commands: `make run` (set up and run the pipeline) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: run test test-long setup lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	dvc repro
	@echo
	@echo "report:    $(abspath reports/report.html)   (open it in a browser)"
	@echo "scores:    outputs/scores.csv     (one row per active account, most at risk first)"
	@echo "metrics:   reports/metrics.json   (dvc metrics show; every figure: reports/evaluation.json)"
	@echo "plots:     reports/plots/         (dvc plots show -> dvc_plots/index.html)"
	@echo "MLflow:    $(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath mlflow.db)"

test: $(STAMP)
	$(BIN)/python -m pytest

# The long profile: every property test with many fresh random examples, and the long-marked runs.
test-long: $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=long -m "long or not long"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf data reports outputs mlflow.db mlartifacts dvc_plots
