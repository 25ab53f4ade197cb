# Every command of the project. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The venv's python runs the CDK app (cdk.json says `python3 app.py`); node_modules/.bin has the pinned CDK CLI.
export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# Offline-friendly CDK: no version check, no telemetry lookups, no Node 20 end-of-life banner on every synth.
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

CDK := cdk --no-notices
export CDK
LOCAL_ARGS ?=
SKIP_PREFLIGHT ?=
MODEL ?=
SMOKE_ARGS ?=
LOGS_ARGS ?=
INPUT ?=
LOCAL ?=
BATCH_ARGS ?=
TEST ?=
INTEG_ARGS ?=
FORCE ?=
SINCE ?=
SAMPLE ?=

.PHONY: help setup lock local test snapshots docs lint bench mutation synth cost preflight deploy smoke integ logs batch destroy clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup:  ## install Python packages (.venv) and the pinned CDK CLI (node_modules)
	@bin/setup

lock: setup  ## regenerate requirements.lock (the deploy toolchain, with hashes) from requirements.txt after a version change
	pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-header --no-emit-index-url --no-emit-find-links -o requirements.lock requirements.txt

local: setup  ## run the API on this machine, no AWS account (Ctrl-C stops it); LOCAL_ARGS="--port 9000 ..."
	python -m local $(LOCAL_ARGS)

test: setup  ## run every test, offline
	AWS_EC2_METADATA_DISABLED=true python -m pytest

snapshots: setup  ## rewrite the reviewed snapshots (templates, settings, API answers, costs, inference input) after an intended change; review git diff
	AWS_EC2_METADATA_DISABLED=true UPDATE_SNAPSHOTS=1 python -m pytest -q tests/stacks/test_template_snapshots.py tests/stacks/test_settings_table.py tests/lambda/test_answer_table.py tests/ops/test_cost_table.py tests/models/test_inference_input_table.py tests/models/test_hub_files.py::test_each_repository_shape_selects_what_the_reviewed_table_says tests/integ/test_integ_snapshots.py

docs: setup  ## rewrite the pages generated from the code (docs/settings.md, docs/errors.md); the tests check them
	python -m ops.docs

lint: setup  ## static checks of the Python code (ruff) and the contract package's types (mypy, mypy.ini)
	ruff check --select F,E9,I --line-length 120 app.py stacks deployment lambda local ops models tests bench
	mypy

bench: setup  ## measure the request path, cold start, synth, tests and local mode (writes bench/latest.md)
	python bench/run.py --output bench/latest.md

mutation: setup  ## mutation testing (mutmut, not in make test): SINCE=<commit> the functions changed since it (SAMPLE=N of them), SAMPLE=400 a fixed-seed sample, else every mutant (hours)
	cd $(CURDIR) && python bench/mutation.py $(if $(SINCE),changed --since $(SINCE) $(if $(SAMPLE),--size $(SAMPLE)),$(if $(SAMPLE),sample --size $(SAMPLE),run)) && python bench/mutation.py report $(if $(SINCE),--only mutants/changed.txt,$(if $(SAMPLE),--only mutants/sample.txt)) > bench/mutation-latest.md
	@echo "score and surviving mutants: bench/mutation-latest.md"

synth: setup  ## synthesize the CloudFormation template into cdk.out (offline); settings via CDK_ARGS="-c key=value"
	AWS_EC2_METADATA_DISABLED=true $(CDK) synth -q $(CDK_ARGS)

cost: setup  ## what the chosen settings cost per hour, per month, idle and per 1,000 images (no AWS call; LIVE=1 asks the AWS Price List API)
	python -m ops.cost $(if $(LIVE),--live) $(CDK_ARGS)

preflight: setup  ## check your account before deploying: credentials, bootstrap, quotas, logging role, cost
	python -m ops.preflight $(CDK_ARGS)

deploy: setup  ## preflight, then deploy to your AWS CLI credentials' account and region (SKIP_PREFLIGHT=1 skips it)
	python -m ops.deploy $(if $(SKIP_PREFLIGHT),--skip-preflight) $(CDK_ARGS)

smoke: setup  ## after a deploy: call every route of every model and print a table (SMOKE_ARGS="--url U --key K")
	python -m ops.smoke $(SMOKE_ARGS) $(CDK_ARGS)

integ: setup  ## the integration tests in your account: deploy, assert on the live API, destroy (TEST=integ_default.py; INTEG_ARGS=--no-clean)
	python -m ops.integ $(TEST) $(INTEG_ARGS)

logs: setup  ## follow a model's endpoint and Lambda logs (MODEL=stable-diffusion; LOGS_ARGS="--since 2h")
	python -m ops.logs $(or $(MODEL),$(error set MODEL=<model name>)) $(LOGS_ARGS) $(CDK_ARGS)

batch: setup  ## a JSON Lines file through a model with Batch Transform (MODEL=, INPUT=; LOCAL=1: local mode)
	python -m ops.batch $(or $(MODEL),$(error set MODEL=<model name>)) $(or $(INPUT),$(error set INPUT=<file.jsonl>)) $(if $(LOCAL),--local) $(BATCH_ARGS) $(CDK_ARGS)

destroy: setup  ## delete everything the stack made (asks first; FORCE=1: without asking, for scripts and CI), and say what stays
	python -m ops.destroy $(if $(FORCE),--force) $(CDK_ARGS)

clean:  ## remove build outputs (keeps .venv and node_modules)
	rm -rf cdk.out .build .pytest_cache .hypothesis .local
