"""Integration test: the default deployment (`make deploy` with cdk.json alone: Stable Diffusion on a realtime GPU
endpoint behind the API key). Run by `make integ` (ops/integ.py: deploy, assert, destroy); its snapshot
(integ_default.py.snapshot/) is checked offline by tests/integ/test_integ_snapshots.py."""

import aws_cdk as cdk
from deployed_api import deployment, integ_test


def build(app: cdk.App) -> None:
    integ_test(app, "DefaultDeployment", [deployment(app, "IntegModelApiDefault")])


if __name__ == "__main__":
    application = cdk.App()
    build(application)
    application.synth()
