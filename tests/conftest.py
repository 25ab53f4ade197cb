"""Shared test setup: offline everywhere, and the Lambda source importable the way the Lambda runtime sees it."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = ROOT / "lambda"

# No test may reach AWS or the Hugging Face Hub; fake credentials keep boto3 from looking for real ones.
os.environ.update({
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "CDK_DISABLE_VERSION_CHECK": "1",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
})
os.environ.pop("AWS_PROFILE", None)
for path in (str(ROOT), str(LAMBDA_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

# No test may reach the network: any name lookup other than this machine's fails at once, in this process (a test
# that would have called AWS fails loudly instead of quietly trying the internet).
import socket  # noqa: E402

_getaddrinfo = socket.getaddrinfo
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


def _local_only(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if name not in LOCAL_NAMES and not name.startswith("127.") and not name.endswith(".localhost"):
        raise socket.gaierror(socket.EAI_NONAME, f"tests are offline: no lookup of {name}")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _local_only
