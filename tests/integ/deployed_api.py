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
- the Lambdas' EMF request metrics arrive in CloudWatch (ListMetrics, polled: metrics take minutes to appear).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Iterable, Optional

import aws_cdk as cdk
from aws_cdk import integ_tests_alpha as integ
from model_api import kinds as _kinds
from model_api import routes as _routes
from model_api.telemetry import NAMESPACE

from deployment.settings import load_settings
from ops.smoke import StreamCase, stream_case
from stacks.model_api_stack import ModelApiStack

ACTIONS = _kinds.actions()
# How long a deployed assertion may poll: an async job waits for an instance to start from zero (~10 minutes for a
# GPU instance and the model's download); metrics appear a few minutes after the request that made them.
JOB_WAIT = cdk.Duration.minutes(30)
METRICS_WAIT = cdk.Duration.minutes(15)
POLL = cdk.Duration.seconds(30)


def deployment(app: cdk.App, stack_name: str, pairs: Iterable[str] = ()) -> ModelApiStack:
    """The stack as `cdk deploy -c NAME=VALUE ...` makes it (cdk.json's context, then pairs), under its own name
    so that an integration test never touches a deployment of the user's."""
    settings = load_settings([*pairs, f"stack_name={stack_name}"])
    return ModelApiStack(app, stack_name, settings=settings)


def integ_test(app: cdk.App, name: str, stacks: list[ModelApiStack]) -> integ.IntegTest:
    """The app's one test case (integ-tests-alpha writes one per app: a second IntegTest replaces the first) over
    its deployments. Its DeployAssert stack is deployed after them (integ-runner's order, and ops/integ.py's) with
    the assertions of assert_deployed_api for each."""
    test = integ.IntegTest(app, name, test_cases=stacks, diff_assets=False)
    for stack in stacks:
        assert_deployed_api(test, stack)
    return test


class ApiCalls:
    """HTTP calls to the deployed API from the assertion provider, with the deployment's API key."""

    def __init__(self, test: integ.IntegTest, stack: ModelApiStack):
        self.assertions, self.stack = test.assertions, stack
        self.base = stack.api.url_for("/").rstrip("/")
        self._checks = 0
        self.key: Optional[str] = None
        if stack.api.api_key is not None:
            key_id = stack.api.api_key.key_id
            call = self.assertions.aws_api_call("APIGateway", "getApiKey", {"apiKey": key_id, "includeValue": True})
            # API Gateway's IAM actions are HTTP verbs on resource paths (not GetApiKey): Service Authorization
            # Reference, "Actions, resources, and condition keys for Amazon API Gateway Management".
            call.provider.add_to_role_policy({
                "Effect": "Allow", "Action": ["apigateway:GET"],
                "Resource": [f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}::/apikeys/{key_id}"]})
            self.key = call.get_att_string("value")

    def expect_status(self, call: integ.IApiCall, code: int) -> None:
        """The status of a call whose answer is also read (get_att_string): such a call's answer is flattened, and
        its own expect() would compare the whole answer, which is then absent; an assertion of its own reads the
        one attribute (integ-tests-alpha: the handler's `actual` is result.apiCallResponse, unset when flattened)."""
        self._checks += 1
        self.assertions.expect(f"{self.stack.stack_name}Status{self._checks}", integ.ExpectedResult.exact(code),
                               integ.ActualResult.from_aws_api_call(call, "status"))

    def call(self, method: str, path: str, body: Optional[dict] = None, key: bool = True,
             accept: Optional[str] = None) -> integ.IApiCall:
        headers = {}
        if key and self.key is not None:
            headers["x-api-key"] = self.key
        if body is not None:
            headers["Content-Type"] = "application/json"
        if accept:
            headers["Accept"] = accept
        return self.assertions.http_api_call(
            self.base + path, method=method, headers=headers,
            body=json.dumps(body, separators=(",", ":")) if body is not None else None)


def status(code: int, **fields) -> integ.ExpectedResult:
    return integ.ExpectedResult.object_like({"status": code, **fields})


def error_code(code: int, error: str) -> integ.ExpectedResult:
    """Our error shape (model_api.errors) with its status and code; the message's wording is not the point."""
    return status(code, body={"error": integ.Match.object_like({"code": error})})


def assert_deployed_api(test: integ.IntegTest, stack: ModelApiStack) -> None:
    settings = stack.settings
    infos = settings.model_infos()
    api = ApiCalls(test, stack)
    asserts = test.assertions
    for endpoint in sorted({info.endpoint_name for info in infos if info.endpoint_name}):
        asserts.aws_api_call("SageMaker", "describeEndpoint", {"EndpointName": endpoint}).expect(
            integ.ExpectedResult.object_like({"EndpointStatus": "InService"}))
    hosted_async = {info.name for info in infos if info.is_async}
    requests: list[integ.IApiCall] = []
    streaming = {info.name for info in infos if info.streaming}
    for route in _routes.routes(infos):
        if route.action in ("catalog", "job"):
            continue
        if route.action in ACTIONS and ACTIONS[route.action].stream_only:  # TGI's /generate_stream
            requests.append(_stream_call(api, route.path, stream_case(ACTIONS[route.action], route.model)))
            continue
        if route.action in ("endpoint", _routes.OPENAI_MODELS):
            api.call("GET", route.path).expect(status(200))
            continue
        action = ACTIONS[route.action]
        named = {"model": route.model} if _routes.is_openai(route.action) else {}
        if route.method == "GET":
            call = api.call("GET", route.path + "?" + urllib.parse.urlencode(action.smoke))
        else:
            call = api.call("POST", route.path, {**action.smoke, **named})
        requests.append(call)
        stores_images = action.finish is None and action.adapter is None
        if route.model in hosted_async:
            if route.method != "POST":  # a job by query string: its 202 is what is asserted
                call.expect(status(202))
                continue
            api.expect_status(call, 202)
            job_path = _routes.JOB_PATH.replace("{job_id}", call.get_att_string("body.job_id"))
            job = api.call("GET", job_path)  # polled until done (its whole answer is compared: not flattened)
            job.expect(status(200, body=integ.Match.object_like({"status": "done"})))
            job.wait_for_assertions(total_timeout=JOB_WAIT, interval=POLL)
            if stores_images:  # the done job read once more, for its image's URL
                done = api.call("GET", job_path)
                job.next(done)
                api.expect_status(done, 200)
                _assert_image_url(asserts, done.get_att_string("body.images.0.url"))
        elif stores_images:
            api.expect_status(call, 200)
            _assert_image_url(asserts, call.get_att_string("body.images.0.url"))
        else:
            call.expect(status(200))
    for info in infos:
        if info.name in streaming:
            prefix, actions = f"/models/{info.name}", _routes.model_actions(info)
            for action in actions:
                case = stream_case(action, info.name)
                if case is not None and not action.stream_only:  # stream-only routes are called above
                    path = prefix if action is actions[0] else f"{prefix}/{action.name}"
                    requests.append(_stream_call(api, path, case))
    first = _routes.routes(infos)[0]
    # No key: API Gateway's own refusal (403 "Forbidden"; 401 from the key authorizer when bearer_keys is on).
    refused = api.call(first.method, first.path, ACTIONS[first.action].smoke if first.method == "POST" else None,
                       key=False)
    refused.expect(status(401 if stack.api.key_authorizer is not None else 403))
    api.call("GET", "/no-such-route").expect(error_code(404, "not_found"))
    api.call("DELETE", first.path).expect(error_code(405, "method_not_allowed"))
    if settings.api_logging != "off":
        # The stage's access and execution logs need the account's API Gateway CloudWatch role (set once per
        # account and region: API Gateway Developer Guide, "Set up CloudWatch logging for REST APIs").
        account = asserts.aws_api_call("APIGateway", "getAccount", {})
        account.provider.add_to_role_policy({
            "Effect": "Allow", "Action": ["apigateway:GET"],
            "Resource": [f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}::/account"]})
        account.expect(integ.ExpectedResult.object_like({"cloudwatchRoleArn": integ.Match.string_like_regexp("^arn:")}))
    for info in infos:  # after the requests: their EMF lines become metrics within minutes
        metrics = asserts.aws_api_call("CloudWatch", "listMetrics", {
            "Namespace": NAMESPACE, "MetricName": "Requests", "Dimensions": [{"Name": "model", "Value": info.name}]})
        for request in requests:
            metrics.node.add_dependency(request)
        metrics.expect(integ.ExpectedResult.object_like({"Metrics": integ.Match.array_with([
            integ.Match.object_like({"MetricName": "Requests"})])}))
        metrics.wait_for_assertions(total_timeout=METRICS_WAIT, interval=POLL)


def _assert_image_url(asserts: integ.IDeployAssert, url: str) -> None:
    """The presigned URL serves the PNG; the same URL with its signature changed is refused by S3. boto3's SigV4
    query presigning puts X-Amz-Signature last, so one more character breaks the signature only."""
    asserts.http_api_call(url).expect(status(200, headers=integ.Match.object_like({"content-type": ["image/png"]})))
    asserts.http_api_call(cdk.Fn.join("", [url, "0"])).expect(status(403))


# How each kind of stream ends (ops.smoke.StreamCase.finish), as a pattern its whole body must contain.
STREAM_ENDS = {"result": r"event: result", "done": r"data: \[DONE\]", "tgi": r'"generated_text"'}


def _stream_call(api: ApiCalls, path: str, case: StreamCase) -> integ.IApiCall:
    """A stream (ops.smoke.stream_case: what make smoke sends): text/event-stream, ending with its finish."""
    call = api.call("POST", path, case.body, accept=case.accept)
    sse = integ.Match.object_like({"content-type": [integ.Match.string_like_regexp("^text/event-stream")]})
    call.expect(status(200, headers=sse, body=integ.Match.string_like_regexp(STREAM_ENDS[case.finish])))
    return call
