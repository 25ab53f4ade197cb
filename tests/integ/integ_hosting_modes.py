"""Integration test: one deployment per hosting mode (deployment/hosting.py HOSTING_MODES; tests/integ/
test_integ_snapshots.py fails when a registered mode has no scenario here), each with a model that suits it, all in
one test case (deployed together, asserted like every deployment by deployed_api.assert_deployed_api). The realtime scenario streams (streaming=true),
so the streaming path is asserted on AWS too. Run by `make integ TEST=integ_hosting_modes.py`."""

import aws_cdk as cdk
from deployed_api import deployment, integ_test

# mode -> the settings of its scenario (`-c NAME=VALUE` pairs), small and cheap where the mode allows.
SCENARIOS = {
    "realtime": ["models=gpt2-tgi", "gpt2-tgi.streaming=true"],
    "serverless": ["models=minilm-embeddings", "hosting=serverless", "memory_mb=2048"],
    "async": ["stable-diffusion.hosting=async", "stable-diffusion.max_instances=1"],
    "shared": ["models=gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting=shared", "minilm-embeddings.hosting=shared",
               "minilm-embeddings.instance_type=ml.m5.xlarge"],
}


def build(app: cdk.App) -> None:
    integ_test(app, "HostingModes", [deployment(app, f"IntegModelApi{mode.capitalize()}", pairs)
                                     for mode, pairs in SCENARIOS.items()])


if __name__ == "__main__":
    application = cdk.App()
    build(application)
    application.synth()
