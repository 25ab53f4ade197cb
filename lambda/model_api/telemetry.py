"""The request's log record as CloudWatch metrics: Embedded Metric Format (EMF) members merged into the one JSON log
line each request writes, so metrics cost no API call, no dependency and no cloudwatch:PutMetricData grant.

EMF (CloudWatch User Guide, "Specification: Embedded metric format"): a JSON log event whose root holds `_aws`
{Timestamp (ms), CloudWatchMetrics: [{Namespace, Dimensions: [[key, ...], ...], Metrics: [{Name, Unit}]}]}, each
metric's value as a root member of that name (a number) and each dimension's value as a root member (a string).
Lambda's JSON log format writes a record's `extra` fields as root members of the line (the runtime's JsonFormatter,
aws-lambda-python-runtime-interface-client lambda_runtime_log_utils.py), so the record and the metrics are one line.
The record's own keys are lowercase (request_id, model, route, ...) and the metrics' PascalCase: no clash.
"""

from __future__ import annotations

from typing import Mapping

NAMESPACE = "SageMakerModelApi"
# Dimension sets (each combination is one custom metric): per model, per model and route, and server errors per model
# and error code. Routes and codes are few (the API's own); request ids and prompts are never dimensions.
BY_MODEL = ["model"]
BY_ROUTE = ["model", "route"]
BY_CODE = ["model", "error_code"]
COUNT, MILLISECONDS = "Count", "Milliseconds"
JOB_METRICS = {"submitted": "JobsSubmitted", "completed": "JobsCompleted", "failed": "JobsFailed"}


def metric_members(record: Mapping) -> tuple[dict, list[dict]]:
    """(root members, metric definitions) of one request's record: counts, latencies and what it produced."""
    status = int(record.get("status") or 0)
    values = {"Requests": (1, COUNT), "ClientErrors": (int(400 <= status < 500), COUNT),
              "ServerErrors": (int(status >= 500), COUNT), "Latency": (record["latency_ms"], MILLISECONDS)}
    if record.get("model_latency_ms") is not None:
        values["ModelLatency"] = (record["model_latency_ms"], MILLISECONDS)
        # Ours: what the Lambda adds around the model (parse, validate, store, sign, respond).
        values["GlueLatency"] = (round(max(record["latency_ms"] - record["model_latency_ms"], 0.0), 1), MILLISECONDS)
    if record.get("first_token_ms") is not None:  # a streamed answer: how long until its first event
        values["TimeToFirstToken"] = (record["first_token_ms"], MILLISECONDS)
    if record.get("stream_error"):  # a streamed answer that broke after its 200 (the error went out as an event)
        values["StreamErrors"] = (1, COUNT)
    if record.get("images"):
        values["Images"] = (record["images"], COUNT)
    if record.get("job") in JOB_METRICS:
        values[JOB_METRICS[record["job"]]] = (1, COUNT)
    return ({name: value for name, (value, _) in values.items()},
            [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()])


def emf(record: Mapping, now_ms: int, namespace: str = NAMESPACE) -> dict:
    """The members to merge into the request's log record (root level) so CloudWatch extracts its metrics."""
    members, metrics = metric_members(record)
    directives = [{"Namespace": namespace, "Dimensions": [BY_MODEL, BY_ROUTE], "Metrics": metrics}]
    if members["ServerErrors"] and record.get("error_code"):
        directives.append({"Namespace": namespace, "Dimensions": [BY_CODE],
                           "Metrics": [{"Name": "ServerErrors", "Unit": COUNT}]})
    return {"_aws": {"Timestamp": int(now_ms), "CloudWatchMetrics": directives}, **members}
