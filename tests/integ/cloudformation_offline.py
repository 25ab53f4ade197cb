"""An integration test's assertion stack, run offline: what CloudFormation and integ-tests-alpha's assertion handler
would do with its custom resources, against local mode instead of a deployment. tests/integ/test_integ_offline.py
runs every integ_*.py this way in `make test`, so an assertion that could not pass on AWS as written fails here.

What is the same as on AWS, read from the sources named:
- the order and the concurrency: CloudFormation creates every resource whose dependencies (DependsOn, Ref,
  Fn::GetAtt) exist at the same time, so each "wave" of the dependency graph starts together (waves());
- each parameter is JSON text the handler parses back, keeping the text where it cannot (integ-tests-alpha
  lambda-handler/utils.js decodeParameters);
- an answer is flattened (dotted keys, JSON strings parsed: deepParseJson) when the call is read or asserts at a
  path, and cut down to its outputPaths (lambda-handler/sdk.js); a call with an expected result compares
  `apiCallResponse.<actualPath>`, or the whole answer (lambda-handler/index.js), with integ-tests-alpha's matchers
  ($Exact, $ObjectLike, $StringLike, $ArrayWith, $SerializedJson: lambda-handler/assertion.js getMatcher);
- the response to CloudFormation is {Status, Reason, PhysicalResourceId, StackId, RequestId, LogicalResourceId,
  NoEcho, Data}, Data being the assertion result and the answer, and its body may be 4,096 bytes at most
  (CloudFormation User Guide, "Custom resource response objects");
- a call with a waiter (stateMachineArn) is made again until its assertion passes (the waiter state machine).

What cannot be the same is AWS-only, each with its reason (AWS_ONLY); the API key comes from local mode's run, and
the API's URL is local mode's.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional

RESPONSE_LIMIT_BYTES = 4096
PSEUDO = {"AWS::Region": "us-east-1", "AWS::Partition": "aws", "AWS::AccountId": "123456789012",
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "DeployAssert"}
# The deployed API's base URL as the assertion stack spells it (url_for("/") of a stack under test, through its
# exports), and the export name's stack prefix.
API_URL = re.compile(r"https://<import:([^:>]+):[^>]*>\.execute-api\.[^/]+/<import:[^>]+>")
# AWS calls local mode cannot answer, and why; each still has its parameters checked where local mode can say
# what they must be (check_aws_only).
AWS_ONLY = {
    ("SageMaker", "describeEndpoint"): "local mode runs no SageMaker control plane: whether an endpoint is InService "
                                       "only an account can say",
    ("APIGateway", "getAccount"): "the API Gateway CloudWatch logging role is an account setting",
    ("CloudWatch", "listMetrics"): "metrics reach CloudWatch only from a deployed Lambda; offline, the namespace "
                                   "asked for is checked against the one local mode's EMF lines carry",
}


@dataclass
class Deployment:
    """A stack under test, served by local mode: its API's URL and key, and what its metrics are named by."""

    api_url: str
    key: str
    namespace_seen: Callable[[], set]  # the EMF namespaces local mode has written so far
    throttle_burst: int
    serverless: dict = field(default_factory=dict)  # model name -> max_concurrency


@dataclass
class Outcome:
    logical_id: str
    kind: str  # "probe", "aws-only", "aws" (answered offline), "assertion"
    passed: bool
    detail: str
    response_bytes: int
    data: dict


class OfflineStack:
    """One assertion stack's template, its deployments (export stack name -> Deployment) and the probe handler."""

    def __init__(self, template: dict, deployments: dict[str, Deployment], probe: Callable[[dict], dict],
                 wait_seconds: float = 120, interval: float = 0.2):
        self.resources = template["Resources"]
        self.deployments, self.probe = deployments, probe
        self.wait_seconds, self.interval = wait_seconds, interval
        self.data: dict[str, dict] = {}
        self.outcomes: list[Outcome] = []

    # ------------------------------------------------------------------------------------------- the graph

    def dependencies(self, logical_id: str) -> set[str]:
        resource = self.resources[logical_id]
        found = set(_as_list(resource.get("DependsOn")))
        found |= {ref for ref in _refs(resource.get("Properties", {})) if ref in self.resources}
        return found

    def waves(self) -> list[list[str]]:
        """The resources CloudFormation starts together, in order: each wave is every resource whose dependencies
        are all in earlier waves."""
        done: set[str] = set()
        out = []
        while len(done) < len(self.resources):
            wave = sorted(r for r in self.resources if r not in done and self.dependencies(r) <= done)
            if not wave:
                raise AssertionError(f"a dependency cycle among {sorted(set(self.resources) - done)}")
            out.append(wave)
            done |= set(wave)
        return out

    def concurrency_problems(self) -> list[str]:
        """API calls that would start together beyond what the deployment takes at once: its key's burst, and a
        serverless model's max_concurrency (more are throttled: 429 from API Gateway, or SageMaker's
        ThrottlingException)."""
        problems = []
        for number, wave in enumerate(self.waves()):
            calls: dict[str, int] = {}
            per_model: dict[tuple[str, str], int] = {}
            for logical_id in wave:
                event = self._static_probe_event(logical_id)
                if event is None:
                    continue
                match = API_URL.match(event.get("url", ""))
                if match is None:
                    continue
                stack = match.group(1)
                calls[stack] = calls.get(stack, 0) + 1
                for model in self.deployments[stack].serverless:
                    if f"/{model}" in event["url"] or f'"model":"{model}"' in (event.get("body") or ""):
                        per_model[(stack, model)] = per_model.get((stack, model), 0) + 1
            for stack, count in calls.items():
                if count > self.deployments[stack].throttle_burst:
                    problems.append(f"wave {number}: {count} calls to {stack} at once, over its key's burst "
                                    f"{self.deployments[stack].throttle_burst}")
            for (stack, model), count in per_model.items():
                if count > self.deployments[stack].serverless[model]:
                    problems.append(f"wave {number}: {count} calls to serverless {model} of {stack} at once, over its "
                                    f"max_concurrency {self.deployments[stack].serverless[model]}")
        return problems

    def _static_probe_event(self, logical_id: str) -> Optional[dict]:
        resource = self.resources[logical_id]
        if resource["Type"] != "Custom::DeployAssert@SdkCallLambdainvoke":
            return None
        text = self.render(resource["Properties"]["parameters"]["Payload"], static=True)
        try:
            return json.loads(json.loads(text))
        except ValueError:
            return None

    # ------------------------------------------------------------------------------------------ intrinsics

    def render(self, value, static: bool = False):
        """A template value with its intrinsics resolved: Refs to pseudo parameters, imports as <import:NAME>,
        Fn::GetAtt of a custom resource from its Data (<getatt:...> before it ran, when static)."""
        if isinstance(value, list):
            return [self.render(v, static) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return PSEUDO.get(value["Ref"], f"<ref:{value['Ref']}>")
        if "Fn::ImportValue" in value:
            return f"<import:{value['Fn::ImportValue']}>"
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            if logical_id in self.data:
                if attribute not in self.data[logical_id]:
                    raise AssertionError(f"{logical_id} has no attribute {attribute} (its Data: "
                                         f"{sorted(self.data[logical_id])}): CloudFormation fails the stack")
                return self.data[logical_id][attribute]
            if static or not self.resources.get(logical_id, {}).get("Type", "").startswith("Custom::"):
                return f"<getatt:{logical_id}.{attribute}>"
            raise AssertionError(f"{logical_id} was read before it ran")
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.render(p, static)) for p in parts)
        return {k: self.render(v, static) for k, v in value.items()}

    def _localized(self, text: str) -> str:
        return API_URL.sub(lambda m: self.deployments[m.group(1)].api_url.rstrip("/"), text)

    # --------------------------------------------------------------------------------------------- running

    def run(self) -> list[Outcome]:
        for wave in self.waves():
            for logical_id in wave:
                if self.resources[logical_id]["Type"].startswith("Custom::DeployAssert@"):
                    self._create(logical_id)
        return self.outcomes

    def _create(self, logical_id: str) -> None:
        resource = self.resources[logical_id]
        properties = {k: self.render(v) for k, v in resource["Properties"].items() if k != "ServiceToken"}
        waits = "stateMachineArn" in properties
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                kind, passed, detail, data = self._attempt(resource["Type"], properties)
            except (OSError, ValueError) as error:  # the handler failing: CloudFormation reads FAILED
                kind, passed, detail, data = "error", False, f"{type(error).__name__}: {error}", {}
            # Only an answer can change by asking again: an AWS-only call's check is the same every time.
            if passed or not waits or kind == "aws-only" or time.monotonic() > deadline:
                break
            time.sleep(self.interval)  # the waiter state machine's interval, shortened: local jobs take seconds
        body = {"Status": "SUCCESS" if passed else "FAILED", "Reason": "OK" if passed else detail[:1000],
                "PhysicalResourceId": logical_id,
                "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/DeployAssert/{uuid.uuid4()}",
                "RequestId": str(uuid.uuid4()), "LogicalResourceId": logical_id, "NoEcho": False, "Data": data}
        size = len(json.dumps(body, separators=(",", ":")).encode())
        self.data[logical_id] = data
        self.outcomes.append(Outcome(logical_id, kind, passed, detail, size, data))

    def _attempt(self, resource_type: str, properties: dict) -> tuple[str, bool, str, dict]:
        if resource_type == "Custom::DeployAssert@AssertEquals":
            passed, detail = match(json.loads(properties["expected"]), _parse(properties["actual"]))
            result = {"assertion": json.dumps({"status": "success" if passed else "fail",
                                               **({} if passed else {"message": detail})})}
            return "assertion", passed, detail, result
        if resource_type.startswith("Custom::DeployAssert@HttpCall"):
            return self._finish("http", self._fetch(properties["parameters"]), properties)
        service, api = properties["service"], properties["api"]
        parameters = {k: _decode(v) for k, v in (properties.get("parameters") or {}).items()}
        kind = "aws"
        if (service, api) == ("Lambda", "invoke"):
            kind, answer = "probe", self._invoke(parameters)
        elif (service, api) == ("APIGateway", "getApiKey"):
            stack = parameters["apiKey"].removeprefix("<import:").split(":")[0]
            answer = {"id": parameters["apiKey"], "value": self.deployments[stack].key}
        elif (service, api) in AWS_ONLY:
            problem = self.check_aws_only(service, api, parameters)
            return "aws-only", problem is None, problem or AWS_ONLY[(service, api)], {}
        else:
            raise AssertionError(f"no offline stand-in for {service}.{api}: add one, or an AWS_ONLY reason")
        return self._finish(kind, answer, properties)

    def _finish(self, kind: str, answer, properties: dict) -> tuple[str, bool, str, dict]:
        # lambda-handler/sdk.js: flattened and filtered when asked for paths, else the answer as it is.
        if properties.get("outputPaths") or properties.get("flattenResponse") == "true":
            flat = _flatten(_deep_parse({"apiCallResponse": answer}))
            paths = properties.get("outputPaths")
            result = {k: v for k, v in flat.items() if not paths or any(k.startswith(f"apiCallResponse.{p}")
                                                                           for p in paths)}
        else:
            result = {"apiCallResponse": answer}
        if "expected" not in properties:
            return kind, True, "no assertion", result
        path = properties.get("actualPath")
        actual = result.get(f"apiCallResponse.{path}") if path else result.get("apiCallResponse")
        passed, detail = match(json.loads(properties["expected"]) if isinstance(properties["expected"], str)
                               else properties["expected"], actual)
        assertion = {"assertion": json.dumps({"status": "success" if passed else "fail",
                                              **({} if passed else {"message": detail})})}
        return kind, passed, detail, {**assertion, **result}

    def _fetch(self, parameters: dict) -> dict:
        """lambda-handler/http.js: the whole HTTP answer (ok, status, statusText, every header, the body parsed
        when it is JSON)."""
        import urllib.error
        import urllib.request

        options = parameters.get("fetchOptions") or {}
        body = options.get("body")
        request = urllib.request.Request(self._localized(parameters["url"]), method=options.get("method", "GET"),
                                         data=body.encode() if isinstance(body, str) else None,
                                         headers=options.get("headers") or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, reason, headers, data = response.status, response.reason, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, reason, headers, data = error.code, error.reason, error.headers, error.read()
        text = data.decode("utf-8", "replace")
        return {"ok": 200 <= status < 300, "status": status, "statusText": reason,
                "headers": {k.lower(): [v] for k, v in headers.items()}, "body": _parse(text)}

    def _invoke(self, parameters: dict) -> dict:
        payload = parameters.get("Payload")
        if not isinstance(payload, str):
            raise AssertionError(f"the Payload is not a string after decoding: {payload!r}")
        try:
            event = json.loads(self._localized(payload))
        except ValueError:
            raise AssertionError(f"Lambda refuses a Payload that is not JSON: {payload[:200]!r}") from None
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": json.dumps(self.probe(event))}

    def check_aws_only(self, service: str, api: str, parameters: dict) -> Optional[str]:
        if (service, api) == ("CloudWatch", "listMetrics"):
            seen = set().union(*(d.namespace_seen() for d in self.deployments.values()))
            if parameters.get("Namespace") not in seen:
                return (f"listMetrics asks namespace {parameters.get('Namespace')!r}; the functions publish to "
                        f"{sorted(seen)}")
        return None


# ------------------------------------------------------------------------------- the handler's own pieces


def _decode(value):
    """lambda-handler/utils.js decodeParameters: a parameter is JSON text; where it does not parse, the text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse(value):
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _deep_parse(value):
    """lambda-handler/utils.js deepParseJson: every string that is JSON, parsed."""
    if isinstance(value, str):
        return _parse(value)
    if isinstance(value, list):
        return [_deep_parse(v) for v in value]
    if isinstance(value, dict):
        return {k: _deep_parse(v) for k, v in value.items()}
    return value


def _flatten(value, prefix: str = "") -> dict:
    """@aws-cdk/aws-custom-resource-sdk-adapter flatten: nested objects and arrays as dotted keys."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out = {}
    for key, child in items:
        out.update(_flatten(child, f"{prefix}.{key}" if prefix else key))
    return out


def match(pattern, actual) -> tuple[bool, str]:
    """integ-tests-alpha's matchers on an encoded pattern (lambda-handler/assertion.js getMatcher): a literal is
    matched exactly; $ObjectLike lets the actual have more keys."""
    if isinstance(pattern, dict) and len(pattern) == 1:
        (name, inner), = pattern.items()
        if name == "$Exact":
            return match(inner, actual)
        if name == "$StringLike":
            ok = isinstance(actual, str) and re.search(inner, actual) is not None
            return ok, "" if ok else f"{actual!r} does not match /{inner}/"
        if name == "$SerializedJson":
            if not isinstance(actual, str):
                return False, f"{actual!r} is not serialized JSON"
            return match(inner, _parse(actual))
        if name == "$ArrayWith":
            if not isinstance(actual, list):
                return False, f"{actual!r} is not an array"
            ok = all(any(match(p, a)[0] for a in actual) for p in inner)
            return ok, "" if ok else f"{actual!r} does not hold every element of {inner!r}"
        if name == "$ObjectLike":
            if not isinstance(actual, dict):
                return False, f"{actual!r} is not an object"
            for key, value in inner.items():
                ok, detail = match(value, actual.get(key))
                if not ok:
                    return False, f"{key}: {detail}"
            return True, ""
    if isinstance(pattern, dict):
        if not isinstance(actual, dict) or set(pattern) != set(actual):
            return False, f"{actual!r} is not {pattern!r}"
        for key, value in pattern.items():
            ok, detail = match(value, actual[key])
            if not ok:
                return False, f"{key}: {detail}"
        return True, ""
    ok = pattern == actual
    return ok, "" if ok else f"{actual!r}, expected {pattern!r}"


def _refs(value) -> set[str]:
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _as_list(value) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]
