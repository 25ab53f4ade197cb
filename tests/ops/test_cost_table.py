"""`make cost` for a range of deployments against the reviewed tables in tests/ops/snapshots/costs.txt.

test_cost.py checks the arithmetic row by row; this notices any other change to what a user is told a deployment
costs (a rate, a count, a label, a note, the total) in every hosting mode, with batch jobs, private networking, WAF
and in other regions. After an intended change, `make snapshots` rewrites the file and `git diff` is the review.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

from deployment.settings import Settings
from ops import cost

TABLES = Path(__file__).parent / "snapshots" / "costs.txt"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"  # make snapshots
SD_SPEC = json.dumps({"mine": {"kind": "text-to-image", "source": "s3://my-models/sd/model.tar.gz",
                               "instance_type": "ml.g5.2xlarge"}})
DEPLOYMENTS = {
    "default": ({}, None),
    "every preset": ({"models": "stable-diffusion,gpt2-tgi,gpt2-cpu,minilm-embeddings,chat-embeddings,"
                                "jumpstart-stable-diffusion", "jumpstart-stable-diffusion.source": "endpoint:js-sd"},
                     None),
    "autoscaled and serverless": ({"models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.min_instances": "2",
                                   "gpt2-cpu.max_instances": "5", "minilm-embeddings.hosting": "serverless",
                                   "minilm-embeddings.provisioned_concurrency": "2",
                                   "minilm-embeddings.max_concurrency": "10"}, None),
    "async to zero and from one": ({"models": "stable-diffusion,gpt2-cpu", "stable-diffusion.hosting": "async",
                                    "stable-diffusion.max_instances": "3", "gpt2-cpu.hosting": "async",
                                    "gpt2-cpu.min_instances": "1", "gpt2-cpu.max_instances": "2"}, None),
    "shared": ({"models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting": "shared",
                "minilm-embeddings.hosting": "shared", "minilm-embeddings.min_instances": "0",
                "minilm-embeddings.instance_type": "ml.m5.xlarge", "gpt2-cpu.instance_type": "ml.m5.xlarge",
                "shared_instances": "1", "shared_max_instances": "3"}, None),
    "batch, waf and a private network": ({"models": "mine", "model_specs": SD_SPEC, "mine.batch": "true",
                                          "waf": "true", "vpc": "create"}, None),
    "cheaper steps": ({"default_steps": "15", "default_size": "256", "stable-diffusion.seconds_per_step": "0.2"},
                      None),
    "another region": ({"models": "stable-diffusion,gpt2-cpu", "region": "eu-west-1"}, None),
    "a region's prices asked for": ({"models": "stable-diffusion,minilm-embeddings"}, "ap-south-1"),
    "an instance with no price": ({"models": "gpt2-cpu", "gpt2-cpu.instance_type": "ml.c7i.48xlarge"}, None),
}


def render() -> str:
    out = []
    for name, (values, given_region) in DEPLOYMENTS.items():
        settings = Settings.from_values(values)
        region = cost.region_of(settings, given_region or settings.region or "us-east-1")
        out += [f"## {name}", cost.table(cost.rows(settings, region), region), ""]
    return "\n".join(out)


def test_every_deployment_costs_what_the_reviewed_tables_say():
    actual = render()
    if UPDATE:
        TABLES.write_text(actual)
    expected = TABLES.read_text()
    assert actual == expected, ("the cost tables differ from the reviewed ones (intended? `make snapshots`, then "
                                "review git diff):\n" + "\n".join(difflib.unified_diff(
                                    expected.splitlines(), actual.splitlines(), "costs.txt", "now", lineterm="")))


def test_the_tables_show_each_hosting_mode_and_the_extras():
    text = TABLES.read_text()
    for word in ("realtime", "serverless", "async", "shared", "batch", "existing", "unknown", "WAF", "ap-south-1",
                 "eu-west-1"):
        assert word in text, word
