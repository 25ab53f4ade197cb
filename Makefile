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
LOCAL_ARGS ?=

.PHONY: help setup local test lint bench synth deploy destroy clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

setup:  ## install Python packages (.venv) and the pinned CDK CLI (node_modules)
	@bin/setup

local: setup  ## run the API on this machine, no AWS account (Ctrl-C stops it); LOCAL_ARGS="--port 9000 ..."
	python -m local $(LOCAL_ARGS)

test: setup  ## run every test, offline
	AWS_EC2_METADATA_DISABLED=true python -m pytest

lint: setup  ## static checks of the Python code (ruff)
	ruff check --select F,E9,I --line-length 120 app.py stacks lambda local tests

bench: setup  ## measure the request path, cold start, synth, tests and local mode (writes bench/latest.md)
	python bench/run.py --output bench/latest.md

synth: setup  ## synthesize the CloudFormation template into cdk.out (offline); settings via CDK_ARGS="-c key=value"
	AWS_EC2_METADATA_DISABLED=true $(CDK) synth -q $(CDK_ARGS)

deploy: setup  ## deploy to the AWS account and region of your AWS CLI credentials
	$(CDK) deploy $(CDK_ARGS)

destroy: setup  ## delete everything the stack made
	$(CDK) destroy $(CDK_ARGS)

clean:  ## remove build outputs (keeps .venv and node_modules)
	rm -rf cdk.out .build .pytest_cache .hypothesis .local
