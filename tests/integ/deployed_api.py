"""What the integration tests (tests/integ/integ_*.py) share: a deployment of the stack under test and the assertions
made on it once it is deployed, in CDK's own form (aws-cdk.integ-tests-alpha: an IntegTest whose DeployAssert stack
calls the API and AWS from custom resources and reports each result as a stack output).

The assertions follow the registries, as `make smoke` does (ops/smoke.py): every route of every deployed model
(model_api.routes over the kinds registry) is called with its action's smoke body, so a new kind or route is
asserted without an edit here. Per deployment, what a fresh account alone can confirm:

- each model's SageMaker endpoint is InService (SageMaker DescribeEndpoint);
- each route answers 200 (202 with a job for an async model, and the job is then read until it is done), an image's
  presigned URL serves an image/png, and the same URL with a broken signature is refused by S3 (403);
- a request without the API key is refused by API Gateway (403, or 401 with the key authorizer) before any model
  runs; an unknown route answers our 404 and an unknown method our 405 (the ANY fallback loses to the routes'
  own methods: API Gateway's method precedence, checked here rather than assumed);
- a streaming model's streams answer text/event-stream and end with their finish (`data: [DONE]` for OpenAI's);
- the account has the API Gateway CloudWatch logging role the stage's logs need (APIGateway GetAccount);
- the Lambdas' EMF request metrics arrive in CloudWatch, in the deployment's own namespace (ListMetrics, polled:
  "it can take up to 15 minutes for a new metric to appear": CloudWatch API Reference, ListMetrics).

Three things CloudFormation imposes, each checked offline by tests/integ/test_integ_offline.py, which runs these
same assertion stacks against local mode:
- a custom resource's response is at most 4,096 bytes (CloudFormation User Guide, "Custom resource response
  objects"), and integ-tests-alpha's HttpApiCall returns the whole HTTP answer: every HTTP call goes through the
  probe function (tests/integ/probe/index.py), whose answer is the verdict and the few values read; every AWS call
  keeps only the paths it asserts (outputPaths);
- resources with no dependency between them are created at once: every call is chained after the one before, so
  the API sees one request at a time (the key's throttle_burst, a serverless model's max_concurrency);
- a call whose values are read is flattened, so each call asserts one path (assert_at_path), never the whole answer.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Iterable, Optional, Sequence

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import integ_tests_alpha as integ
from model_api import kinds as _kinds
from model_api import routes as _routes

from deployment.settings import load_settings
from ops.smoke import StreamCase, stream_case
from stacks.model_api_stack import ModelApiStack

ACTIONS = _kinds.actions()
# How long a deployed assertion may poll: an async job waits for an instance to start from zero (~10 minutes for a
# GPU instance and the model's download); a new metric may take "up to 15 minutes" to be listed (CloudWatch API
# Reference, ListMetrics), after the request that made it.
JOB_WAIT = cdk.Duration.minutes(30)
METRICS_WAIT = cdk.Duration.minutes(20)
POLL = cdk.Duration.seconds(30)
PROBE_DIR = Path(__file__).resolve().parent / "probe"
OK = integ.ExpectedResult.exact("ok")


def deployment(app: cdk.App, stack_name: str, pairs: Iterable[str] = ()) -> ModelApiStack:
    """The stack as `cdk deploy -c NAME=VALUE ...` makes it (cdk.json's context, then pairs), under its own name
    so that an integration test never touches a deployment of the user's."""
    settings = load_settings([*pairs, f"stack_name={stack_name}"])
    return ModelApiStack(app, stack_name, settings=settings)


def integ_test(app: cdk.App, name: str, stacks: list[ModelApiStack]) -> integ.IntegTest:
    """The app's one test case (integ-tests-alpha writes one per app: a second IntegTest replaces the first) over
    its deployments. Its DeployAssert stack is deployed after them (integ-runner's order, and ops/integ.py's) with
    the assertions of assert_deployed_api for each, all in one chain."""
    test = integ.IntegTest(app, name, test_cases=stacks, diff_assets=False)
    assert_stack = next(c for c in test.node.find_all() if cdk.Stack.is_stack(c))
    probe = lambda_.Function(
        assert_stack, "Probe", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
        # Four tries of up to 60 s each with pauses between (tests/integ/probe/index.py): within five minutes.
        code=lambda_.Code.from_asset(str(PROBE_DIR), exclude=["__pycache__"]), timeout=cdk.Duration.minutes(5),
        description="Integration tests: one HTTP call, answered with its verdict and the values read")
    chain = Chain(test.assertions, probe)
    for stack in stacks:
        assert_deployed_api(chain, stack)
    return test


class Chain:
    """The assertion calls in the order they are made: each depends on the one before (CloudFormation creates
    resources with no dependency between them at once), so the API under test sees one request at a time."""

    def __init__(self, assertions: integ.IDeployAssert, probe: lambda_.Function):
        self.assertions, self.probe = assertions, probe
        self._last: Optional[integ.IApiCall] = None

    def add(self, call: integ.IApiCall) -> integ.IApiCall:
        if self._last is not None:
            self._last.next(call)
        self._last = call
        return call

    def aws(self, service: str, api: str, parameters: dict, path: str, expected: integ.ExpectedResult,
            output_paths: Sequence[str] = ()) -> integ.IApiCall:
        """An AWS API call that keeps only `path` (and output_paths) of its answer and asserts `path`."""
        call = self.assertions.aws_api_call(service, api, parameters, list(dict.fromkeys([path, *output_paths])))
        call.assert_at_path(path, expected)
        return self.add(call)

    def http(self, url: str, method: str = "GET", headers: Optional[dict] = None,
             body: Optional[dict] = None, expect: Optional[dict] = None,
             read: Optional[dict] = None) -> integ.IApiCall:
        """One HTTP call through the probe (tests/integ/probe/index.py): asserts its verdict is "ok"; `read` names
        values of the answer for later calls (call.get_att_string(f"Payload.{name}"))."""
        event = {"method": method, "url": url, "headers": headers or {}, "expect": expect or {}, "read": read or {},
                 "body": json.dumps(body, separators=(",", ":")) if body is not None else None}
        call = self.assertions.invoke_function(function_name=self.probe.function_name, payload=probe_payload(event))
        for name in read or {}:
            call.get_att_string(f"Payload.{name}")  # kept in the answer (outputPaths)
        call.assert_at_path("Payload.check", OK)
        return self.add(call)


def probe_payload(event: dict) -> str:
    """The probe's event as LambdaInvokeFunction's Payload: its JSON text, tokens (the API's URL, the key, a job id)
    left in it as they are. The construct writes each parameter JSON-encoded, escaping a string's own text around
    its tokens, and its handler JSON-parses it back (lambda-handler/utils.js decodeParameters; on failure the text
    is kept as it is). Not Stack.to_json_string: its Fn::Join counts as JSON already and is written unescaped, which
    the handler cannot parse (tests/integ/test_integ_offline.py decodes each payload as the handler does)."""
    return json.dumps(event, separators=(",", ":"))


class ApiCalls:
    """HTTP calls to the deployed API through the probe, with the deployment's API key."""

    def __init__(self, chain: Chain, stack: ModelApiStack):
        self.chain, self.stack = chain, stack
        self.base = stack.api.url_for("/").rstrip("/")
        self.key: Optional[str] = None
        if stack.api.api_key is not None:
            key_id = stack.api.api_key.key_id
            call = chain.aws("APIGateway", "getApiKey", {"apiKey": key_id, "includeValue": True}, "id",
                             integ.ExpectedResult.exact(key_id), output_paths=["value"])
            # API Gateway's IAM actions are HTTP verbs on resource paths (not GetApiKey): Service Authorization
            # Reference, "Actions, resources, and condition keys for Amazon API Gateway Management".
            call.provider.add_to_role_policy({
                "Effect": "Allow", "Action": ["apigateway:GET"],
                "Resource": [f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}::/apikeys/{key_id}"]})
            self.key = call.get_att_string("value")

    def call(self, method: str, path: str, body: Optional[dict] = None, key: bool = True,
             accept: Optional[str] = None, expect: Optional[dict] = None,
             read: Optional[dict] = None) -> integ.IApiCall:
        headers = {}
        if key and self.key is not None:
            headers["x-api-key"] = self.key
        if body is not None:
            headers["Content-Type"] = "application/json"
        if accept:
            headers["Accept"] = accept
        return self.chain.http(self.base + path, method, headers, body, expect, read)

    def url(self, url: str, expect: dict) -> integ.IApiCall:
        return self.chain.http(url, expect=expect)


def error_code(status: int, error: str) -> dict:
    """Our error shape (model_api.errors) with its status and code; the message's wording is not the point."""
    return {"status": status, "json": {"body.error.code": error}}


def assert_deployed_api(chain: Chain, stack: ModelApiStack) -> None:
    settings = stack.settings
    infos = settings.model_infos()
    api = ApiCalls(chain, stack)
    for endpoint in sorted({info.endpoint_name for info in infos if info.endpoint_name}):
        chain.aws("SageMaker", "describeEndpoint", {"EndpointName": endpoint}, "EndpointStatus",
                  integ.ExpectedResult.exact("InService"))
    hosted_async = {info.name for info in infos if info.is_async}
    streaming = {info.name for info in infos if info.streaming}
    for route in _routes.routes(infos):
        if route.action in ("catalog", "job"):
            continue
        if route.action in ACTIONS and ACTIONS[route.action].stream_only:  # TGI's /generate_stream
            _stream_call(api, route.path, stream_case(ACTIONS[route.action], route.model))
            continue
        if route.action in ("endpoint", _routes.OPENAI_MODELS):
            api.call("GET", route.path, expect={"status": 200})
            continue
        if route.action == _routes.OPENAI_MODEL:  # the route's own model, by id
            api.call("GET", route.path.replace(_routes.MODEL_ID, "/" + route.model), expect={"status": 200})
            continue
        action = ACTIONS[route.action]
        named = {"model": route.model} if _routes.is_openai(route.action) else {}
        path, body = (route.path + "?" + urllib.parse.urlencode(action.smoke), None) if route.method == "GET" \
            else (route.path, {**action.smoke, **named})
        stores_images = action.finish is None and action.adapter is None
        if route.model in hosted_async:
            if route.method != "POST":  # a job by query string: its 202 is what is asserted
                api.call("GET", path, expect={"status": 202})
                continue
            submitted = api.call("POST", path, body, expect={"status": 202}, read={"job": "body.job_id"})
            job_path = _routes.JOB_PATH.replace("{job_id}", submitted.get_att_string("Payload.job"))
            done = api.call("GET", job_path, expect={"status": 200, "json": {"body.status": "done"}},
                            read={"url": "body.images.0.url"} if stores_images else None)
            done.wait_for_assertions(total_timeout=JOB_WAIT, interval=POLL)
            if stores_images:
                _assert_image_url(api, done.get_att_string("Payload.url"))
        elif stores_images:
            made = api.call(route.method, path, body, expect={"status": 200}, read={"url": "body.images.0.url"})
            _assert_image_url(api, made.get_att_string("Payload.url"))
        else:
            api.call(route.method, path, body, expect={"status": 200})
    for info in infos:
        if info.name in streaming:
            prefix, actions = f"/models/{info.name}", _routes.model_actions(info)
            for action in actions:
                case = stream_case(action, info.name)
                if case is not None and not action.stream_only:  # stream-only routes are called above
                    _stream_call(api, prefix if action is actions[0] else f"{prefix}/{action.name}", case)
    first = _routes.routes(infos)[0]
    # No key: API Gateway's own refusal (403 "Forbidden"; 401 from the key authorizer when bearer_keys is on).
    api.call(first.method, first.path, ACTIONS[first.action].smoke if first.method == "POST" else None, key=False,
             expect={"status": 401 if stack.api.key_authorizer is not None else 403})
    api.call("GET", "/no-such-route", expect=error_code(404, "not_found"))
    api.call("DELETE", first.path, expect=error_code(405, "method_not_allowed"))
    if settings.api_logging != "off":
        # The stage's access and execution logs need the account's API Gateway CloudWatch role (set once per
        # account and region: API Gateway Developer Guide, "Set up CloudWatch logging for REST APIs").
        account = chain.aws("APIGateway", "getAccount", {}, "cloudwatchRoleArn",
                            integ.ExpectedResult.string_like_regexp("^arn:"))
        account.provider.add_to_role_policy({
            "Effect": "Allow", "Action": ["apigateway:GET"],
            "Resource": [f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}::/account"]})
    for info in infos:  # after the requests: their EMF lines become metrics, in the deployment's namespace
        metrics = chain.aws("CloudWatch", "listMetrics", {
            "Namespace": settings.metrics_namespace, "MetricName": "Requests",
            "Dimensions": [{"Name": "model", "Value": info.name}]}, "Metrics.0.MetricName",
            integ.ExpectedResult.exact("Requests"))
        metrics.wait_for_assertions(total_timeout=METRICS_WAIT, interval=POLL)


def _assert_image_url(api: ApiCalls, url: str) -> None:
    """The presigned URL serves the PNG; the same URL with its signature changed is refused by S3. boto3's SigV4
    query presigning puts X-Amz-Signature last, so one more character breaks the signature only."""
    api.url(url, expect={"status": 200, "type": "^image/png", "png": True})
    api.url(cdk.Fn.join("", [url, "0"]), expect={"status": 403})


# How each kind of stream ends (ops.smoke.StreamCase.finish), as a pattern its whole body must contain.
STREAM_ENDS = {"result": r"event: result", "done": r"data: \[DONE\]", "tgi": r'"generated_text":"'}


def _stream_call(api: ApiCalls, path: str, case: StreamCase) -> integ.IApiCall:
    """A stream (ops.smoke.stream_case: what make smoke sends): text/event-stream, ending with its finish, and no
    error event in it."""
    return api.call("POST", path, case.body, accept=case.accept,
                    expect={"status": 200, "type": "^text/event-stream", "pattern": STREAM_ENDS[case.finish],
                            "absent": "event: error"})
