"""`cdk synth` with the pinned CLI works offline, as the README says."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pinned_cli_synthesizes_offline(tmp_path):
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), "run `make setup` (bin/setup installs the pinned CLI)"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true", "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run([str(cli), "synth", "-q", "--no-notices", "-o", str(tmp_path), "-c", "instance_count=2"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((tmp_path / "SageMakerModelApi.template.json").read_text())
    configs = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert configs[0]["Properties"]["ProductionVariants"][0]["InitialInstanceCount"] == 2
    # The OpenAPI document is written beside the template: what the deployed API serves at GET /openapi.json.
    from deployment.settings import load_settings

    assert (tmp_path / "openapi.json").read_text() == load_settings(["instance_count=2"]).openapi_json()
