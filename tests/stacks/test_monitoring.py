"""The deployment's dashboard, alarms and alarm topic (stacks/monitoring.py), in the whole app's template."""

from __future__ import annotations

import json

import pytest
from cfn_render import render, resources

ASYNC_WITH_EMAIL = {"models": "stable-diffusion,gpt2-cpu,minilm-embeddings", "stable-diffusion.hosting": "async",
                    "minilm-embeddings.hosting": "serverless", "alarm_email": "oncall@example.com",
                    "alarm_job_age_seconds": "900", "stack_name": "Watched"}


def alarms(template) -> dict:
    """alarm construct name (e.g. Api5xxRate) -> properties, for the Monitoring construct's alarms."""
    out = {}
    for resource in resources(template, "AWS::CloudWatch::Alarm").values():
        path = resource.get("Metadata", {}).get("aws:cdk:path", "")
        if "/Monitoring/" in path:
            out[path.split("/Monitoring/")[1].split("/")[0]] = resource["Properties"]
    return out


def dimensions(props) -> dict:
    return {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}


def test_the_default_deployment_alarms_on_what_an_on_call_engineer_needs(template):
    found = alarms(template)
    assert sorted(found) == ["Api5xxRate", "StableDiffusionGpuMemory", "StableDiffusionInvocation5xx",
                             "StableDiffusionLambdaErrors", "StableDiffusionLambdaThrottles",
                             "StableDiffusionModelLatency", "StableDiffusionNoInstance"]
    api = found["Api5xxRate"]
    assert (api["Namespace"], api["MetricName"], api["Statistic"], api["Period"], api["Threshold"]) == (
        "AWS/ApiGateway", "5XXError", "Average", 300, 0.05)
    assert api["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and api["TreatMissingData"] == "notBreaching"
    latency = found["StableDiffusionModelLatency"]
    # p90 in microseconds against 80% of the 22 s a request gives the model, over two 5-minute periods.
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"], latency["EvaluationPeriods"]) \
        == ("ModelLatency", "p90", 0.8 * 22 * 1_000_000, 2)
    assert dimensions(latency) == {"EndpointName": "sagemakermodelapi-stable-diffusion", "VariantName": "AllTraffic"}
    gpu = found["StableDiffusionGpuMemory"]
    assert (gpu["Namespace"], gpu["MetricName"], gpu["Threshold"]) == (
        "/aws/sagemaker/Endpoints", "GPUMemoryUtilization", 90)  # one GPU on ml.g5.xlarge
    outage = found["StableDiffusionNoInstance"]
    assert (outage["MetricName"], outage["Statistic"], outage["ComparisonOperator"], outage["TreatMissingData"],
            outage["Threshold"]) == ("CPUUtilization", "SampleCount", "LessThanThreshold", "breaching", 1)
    errors = found["StableDiffusionInvocation5xx"]
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("Invocation5XXErrors", "Sum", 5)
    for name in ("StableDiffusionLambdaErrors", "StableDiffusionLambdaThrottles"):
        assert (found[name]["Namespace"], found[name]["Threshold"]) == ("AWS/Lambda", 1)
    # Without alarm_email: alarms exist, and tell no one.
    assert all("AlarmActions" not in props for props in found.values())
    assert resources(template, "AWS::SNS::Topic") == {}


def test_alarm_email_gets_an_encrypted_topic_and_every_alarm_tells_it(synth):
    template = synth(**ASYNC_WITH_EMAIL)
    (topic_id, topic), = resources(template, "AWS::SNS::Topic").items()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == "Delete"
    assert key["Properties"]["PendingWindowInDays"] == 7
    cloudwatch = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                  if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert [sorted(s["Action"]) for s in cloudwatch] == [["kms:Decrypt", "kms:GenerateDataKey*"]]
    (subscription,) = resources(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {"Protocol": "email", "TopicArn": {"Ref": topic_id},
                                          "Endpoint": "oncall@example.com"}
    (policy,) = resources(template, "AWS::SNS::TopicPolicy").values()
    assert [s["Effect"] for s in policy["Properties"]["PolicyDocument"]["Statement"]] == ["Deny"]  # TLS only
    found = alarms(template)
    for props in found.values():
        assert props["AlarmActions"] == [{"Ref": topic_id}] and props["OKActions"] == [{"Ref": topic_id}]
    job_age = found["StableDiffusionJobAge"]
    assert (job_age["MetricName"], job_age["Statistic"], job_age["Threshold"]) == (
        "ApproximateAgeOfOldestRequest", "Maximum", 900)
    assert dimensions(job_age) == {"EndpointName": "watched-stable-diffusion"}
    # An async model's latency budget is its job timeout; no "no instance" alarm where instances may be none.
    assert found["StableDiffusionModelLatency"]["Threshold"] == 0.8 * 900 * 1_000_000
    assert "StableDiffusionNoInstance" not in found and "MinilmEmbeddingsNoInstance" not in found
    assert "Gpt2CpuGpuMemory" not in found and "Gpt2CpuNoInstance" in found  # ml.m5.xlarge: no GPU
    assert "MinilmEmbeddingsInvocation5xx" in found  # serverless endpoints report invocations too


def test_instances_that_scale_alarm_on_a_days_instance_hours_beyond_their_minimum(synth, template):
    found = alarms(synth(**ASYNC_WITH_EMAIL, **{"gpt2-cpu.max_instances": "3"}))
    # Async from zero: 8 instance-hours (alarm_instance_hours) in a day; autoscaled realtime from 1: 24 + 8.
    for name, hours, endpoint in (("StableDiffusionInstanceHours", 8, "watched-stable-diffusion"),
                                  ("Gpt2CpuInstanceHours", 32, "watched-gpt2-cpu")):
        alarm = found[name]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
            "/aws/sagemaker/Endpoints", "CPUUtilization", "SampleCount", 86400)
        assert alarm["Threshold"] == hours * 60 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"  # no instance, no data: nothing spent
        assert dimensions(alarm) == {"EndpointName": endpoint, "VariantName": "AllTraffic"}
    assert "MinilmEmbeddingsInstanceHours" not in found  # serverless: no instances
    assert not any(name.endswith("InstanceHours") for name in alarms(template))  # one fixed instance: known cost
    shared = alarms(synth(models="gpt2-cpu,minilm-embeddings", alarm_instance_hours="2", **{
        "gpt2-cpu.hosting": "shared", "minilm-embeddings.hosting": "shared", "gpt2-cpu.min_instances": "0",
        "minilm-embeddings.min_instances": "0", "minilm-embeddings.instance_type": "ml.m5.xlarge"}))
    assert shared["SharedInstanceHours"]["Threshold"] == 2 * 60
    assert dimensions(shared["SharedInstanceHours"]) == {"EndpointName": "sagemakermodelapi-shared",
                                                         "VariantName": "AllTraffic"}


def test_a_monthly_budget_tells_the_alarm_address_on_sagemakers_cost(synth, template):
    assert resources(template, "AWS::Budgets::Budget") == {}
    budgeted = synth(monthly_budget_usd="250", alarm_email="oncall@example.com")
    (budget,) = resources(budgeted, "AWS::Budgets::Budget").values()
    props = budget["Properties"]
    assert props["Budget"] == {"BudgetName": "SageMakerModelApi-sagemaker", "BudgetType": "COST",
                               "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 250, "Unit": "USD"},
                               "CostFilters": {"Service": ["Amazon SageMaker"]}}
    assert [(n["Notification"]["NotificationType"], n["Notification"]["Threshold"], n["Subscribers"])
            for n in props["NotificationsWithSubscribers"]] == [
        ("ACTUAL", 80, [{"SubscriptionType": "EMAIL", "Address": "oncall@example.com"}]),
        ("FORECASTED", 100, [{"SubscriptionType": "EMAIL", "Address": "oncall@example.com"}])]


def test_the_budget_construct_refuses_what_cannot_work():
    from aws_cdk import App, Stack

    from stacks.cost_budget import SageMakerBudget

    with pytest.raises(ValueError, match="^SageMakerBudget B: monthly_usd must be from 1 to 1000000 \\(got 0\\); "
                                         "email 'x' is not an email address$"):
        SageMakerBudget(Stack(App(), "T"), "B", monthly_usd=0, email="x")


def test_the_dashboard_shows_api_lambdas_endpoints_and_our_request_metrics(synth):
    template = synth(**ASYNC_WITH_EMAIL)
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "Watched-model-api"
    body = render(dashboard["Properties"]["DashboardBody"], template)
    widgets = json.loads(body)["widgets"]
    titles = [w["properties"].get("title") for w in widgets]
    for title in ("Alarms", "API requests and errors", "API latency (ms)", "Requests by model (ours)",
                  "Lambda errors and throttles", "Lambda duration p90 (ms)", "Lambda concurrent executions",
                  "stable-diffusion: invocations and errors", "stable-diffusion: job backlog",
                  "stable-diffusion: instances (%; per core or GPU)", "gpt2-cpu: model and overhead latency p90 (µs)",
                  "minilm-embeddings: invocations and errors"):
        assert title in titles, title
    assert "minilm-embeddings: instances (%; per core or GPU)" not in titles  # serverless has none
    metrics = json.dumps([w["properties"].get("metrics") for w in widgets])
    for name in ("5XXError", "Latency", "ConcurrentExecutions", "OverheadLatency", "GPUMemoryUtilization",
                 "DiskUtilization", "ApproximateBacklogSize", "GlueLatency", "JobsCompleted"):
        assert f'"{name}"' in metrics, name
    assert '"SageMakerModelApi/Watched"' in metrics
    (alarm_widget,) = [w for w in widgets if w["properties"].get("title") == "Alarms"]
    assert len(alarm_widget["properties"]["alarms"]) == len(alarms(template))


@pytest.mark.parametrize("values, message", [
    ({"alarm_email": "not-an-address"}, "alarm_email 'not-an-address' is not an email address"),
    ({"alarm_api_5xx_percent": "0"}, "alarm_api_5xx_percent must be above 0 and at most 100 (got 0.0)"),
    ({"alarm_latency_percent": "101"}, "alarm_latency_percent must be above 1 and at most 100 (got 101.0)"),
    ({"alarm_job_age_seconds": "30"}, "alarm_job_age_seconds must be from 60 to 21600 (got 30)"),
    ({"alarm_job_age_seconds": "21601"}, "alarm_job_age_seconds must be from 60 to 21600 (got 21601)"),
    ({"alarm_endpoint_5xx": "0"}, "alarm_endpoint_5xx must be at least 1 (got 0)"),
    ({"alarm_instance_hours": "0.4"}, "alarm_instance_hours must be from 0.5 to 2400 (got 0.4)"),
    ({"monthly_budget_usd": "100"}, "monthly_budget_usd needs alarm_email: the budget tells that address when "
                                    "SageMaker's cost passes 80% of it, or is forecast to pass all of it"),
    ({"monthly_budget_usd": "0.5", "alarm_email": "a@example.com"}, "monthly_budget_usd must be from 1 to 1000000 "
                                                                    "(got 0.5)"),
    ({"log_level": "ERROR"}, "log_level must be INFO or DEBUG (got 'ERROR'): each request's log line carries its "
                             "metrics and is INFO"),
])
def test_alarm_settings_are_checked_at_synth(values, message):
    from deployment.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as caught:
        Settings.from_values(values)
    assert message in str(caught.value)


def test_tracing_is_off_unless_asked_and_then_covers_the_stage_and_every_lambda(template, synth):
    def traced(t):
        """The stage's tracing, and each function in the request path's (model functions, the key authorizer, the
        fallback for unknown routes): every function but the bucket emptier, which runs only on delete."""
        stage = [r["Properties"].get("TracingEnabled") for r in resources(t, "AWS::ApiGateway::Stage").values()]
        functions = {k.rstrip("0123456789ABCDEF"): r["Properties"].get("TracingConfig")
                     for k, r in resources(t, "AWS::Lambda::Function").items() if "Emptier" not in k}
        return stage, functions

    assert traced(template) == ([False], {"StableDiffusionFunction": None, "ApiKeyAuthorizerFunction": None,
                                          "UnroutedFunction": None})
    on = synth(tracing="true", models="stable-diffusion,gpt2-cpu")
    active = {"Mode": "Active"}
    assert traced(on) == ([True], {"StableDiffusionFunction": active, "Gpt2CpuFunction": active,
                                   "ApiKeyAuthorizerFunction": active, "UnroutedFunction": active})
    xray = [s for r in resources(on, "AWS::IAM::Policy").values() for s in r["Properties"]["PolicyDocument"]["Statement"]
            if any(a.startswith("xray:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
    assert len(xray) == 4 and all(s["Action"] == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"] and
                                  s["Resource"] == "*" for s in xray)


def test_shared_models_are_watched_through_their_component(synth):
    template = synth(models="gpt2-cpu,minilm-embeddings", **{"gpt2-cpu.hosting": "shared",
                                                             "minilm-embeddings.hosting": "shared",
                                                             "minilm-embeddings.instance_type": "ml.m5.xlarge"})
    found = alarms(template)
    assert dimensions(found["Gpt2CpuInvocation5xx"]) == {"InferenceComponentName": "sagemakermodelapi-gpt2-cpu"}
    assert dimensions(found["MinilmEmbeddingsModelLatency"]) == {
        "InferenceComponentName": "sagemakermodelapi-minilm-embeddings"}
    assert "Gpt2CpuNoInstance" not in found  # the shared endpoint's instances are not one model's


def test_api_graphs_are_per_minute(template):
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(render(dashboard["Properties"]["DashboardBody"], template))["widgets"]
    (latency,) = [w for w in widgets if w["properties"].get("title") == "API latency (ms)"]
    assert [m[-1]["period"] for m in latency["properties"]["metrics"]] == [60, 60, 60]
    # The Lambda graphs are per minute too, errors and throttles alike.
    (lambdas,) = [w for w in widgets if w["properties"].get("title") == "Lambda errors and throttles"]
    assert [m[-1]["period"] for m in lambdas["properties"]["metrics"]] == [60, 60]
    # Every graph of the dashboard is per minute: a 5-minute series beside 1-minute ones misleads.
    periods = {m[-1].get("period") for w in widgets for m in w["properties"].get("metrics", [])}
    assert periods == {60}, periods


def test_the_request_metrics_graphs_name_each_metric_exactly_as_the_lambdas_write_it(template):
    # CloudWatch metric names are case-sensitive: a graph of "jobsfailed" shows nothing.
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(render(dashboard["Properties"]["DashboardBody"], template))["widgets"]
    (images,) = [w for w in widgets if w["properties"].get("title") == "Images and jobs"]
    names = [m[1] for m in images["properties"]["metrics"]]
    from model_api import telemetry

    assert names == ["Images", "JobsSubmitted", "JobsCompleted", "JobsFailed"]
    assert names[1:] == [telemetry.JOB_METRICS[state] for state in ("submitted", "completed", "failed")]


def test_the_job_age_bounds_themselves_are_allowed():
    from deployment.settings import Settings

    for seconds in ("60", "21600"):
        assert Settings.from_values({"alarm_job_age_seconds": seconds}).alarm_job_age_seconds == int(seconds)
    # One failed invocation in five minutes may alarm: the lowest count allowed.
    assert Settings.from_values({"alarm_endpoint_5xx": "1"}).alarm_thresholds.endpoint_5xx == 1


def test_a_model_on_an_endpoint_made_elsewhere_gets_no_endpoint_graphs_and_the_models_after_it_do(synth):
    template = synth(models="jumpstart-stable-diffusion,gpt2-cpu",
                     **{"jumpstart-stable-diffusion.source": "endpoint:js-sd"})
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    titles = [w["properties"].get("title") for w in json.loads(render(dashboard["Properties"]["DashboardBody"],
                                                                        template))["widgets"]]
    assert "jumpstart-stable-diffusion: invocations and errors" not in titles
    assert "gpt2-cpu: invocations and errors" in titles
