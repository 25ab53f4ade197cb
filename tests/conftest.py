"""Shared test setup: offline everywhere. The contract package (lambda/model_api) is installed in the venv; the
Lambda entries beside it (handler.py, stream_runtime.py, ...) are loaded by path where a test needs one."""

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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Under `make mutation` (mutmut sets MUTANT_UNDER_TEST) the tests run in mutants/, and model_api must be the mutated
# copy there: the editable install's finder (a sys.meta_path hook, ahead of sys.path) would import the checkout's,
# and every mutant of the contract package would have no test.
if "MUTANT_UNDER_TEST" in os.environ:  # set, even empty (mutmut's clean run): under mutation
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")
                        and not type(f).__module__.startswith("__editable__")]
    sys.path.insert(0, str(LAMBDA_DIR))
    for loaded in [m for m in sys.modules if m == "model_api" or m.startswith("model_api.")]:
        del sys.modules[loaded]

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

# Under mutation testing (make mutation sets MUTANT_UNDER_TEST), a fixture shared across tests would run product code
# once, for whichever test came first: mutmut would record only that test as reaching the code, and a mutant would
# meet a fixture value built before it was switched on. So every fixture that runs our code is set up per test then.
# Fixtures that only build offline test models stay shared (they run no product code, and take seconds).
if "MUTANT_UNDER_TEST" in os.environ:  # set, even empty (mutmut's clean run): under mutation
    import pytest  # noqa: E402

    _fixture = pytest.fixture
    SHARED_UNDER_MUTATION = {"tiny_sd_dir", "tiny_lm_dir", "minilm", "moto_endpoint"}

    def _per_test_fixture(function=None, **options):
        def decorate(fn):
            if fn.__name__ not in SHARED_UNDER_MUTATION:
                options.pop("scope", None)
            return _fixture(fn, **options)

        return decorate(function) if function is not None else decorate

    pytest.fixture = _per_test_fixture
