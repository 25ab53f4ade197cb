"""A deployment's dashboard and alarms, and the SNS topic that tells someone (stacks.model_api_stack).

Metrics named here and where AWS documents them: API Gateway (AWS/ApiGateway: Count, 4XXError, 5XXError, Latency;
5XXError's Average is the share of requests that failed), Lambda (AWS/Lambda: Errors, Throttles, Duration,
ConcurrentExecutions), SageMaker endpoints (AWS/SageMaker: Invocations, Invocation4XXErrors, Invocation5XXErrors,
ModelLatency and OverheadLatency in microseconds; per instance in /aws/sagemaker/Endpoints: CPUUtilization,
GPUUtilization, GPUMemoryUtilization, DiskUtilization, each up to 100% per core or GPU; async: ApproximateBacklogSize,
ApproximateAgeOfOldestRequest), inference components (AWS/SageMaker with InferenceComponentName), and the Lambdas'
own request metrics (model_api.telemetry, EMF).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from deployment.alarm_thresholds import EMAIL, AlarmThresholds
from stacks.model_endpoint import METRICS_NAMESPACE, VARIANT_NAME, ModelEndpoint
from stacks.shared_endpoint import ModelComponent, SharedEndpoint

FIVE_MINUTES = Duration.minutes(5)


@dataclass(frozen=True)
class WatchedModel:
    """What monitoring needs to know of one model: its function, what hosts it, and the bounds its alarms use."""

    name: str
    function: lambda_.IFunction
    endpoint: Optional[ModelEndpoint] = None  # realtime, serverless or async, made by the stack
    component: Optional[ModelComponent] = None  # shared
    request_seconds: float = 22.0  # what one model call may take (the invoke read timeout, or the job timeout)
    gpus: int = 0  # GPUs per instance (GPU alarms only when above 0)
    always_on: bool = False  # realtime with at least one instance: no instance reporting is an outage


def _endpoint_metric(endpoint: ModelEndpoint, name: str, period: Duration, statistic: str = "Maximum"
                     ) -> cloudwatch.Metric:
    """An async endpoint's backlog metrics, which SageMaker reports per endpoint (EndpointName only, no variant)."""
    return cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=name, statistic=statistic, period=period,
                             dimensions_map={"EndpointName": endpoint.endpoint_name})


class ModelApiMonitoring(Construct):
    """The dashboard, the alarms and (with alarm_email) an encrypted SNS topic with an email subscription.

    Props:
      api: the RestApi; models: WatchedModel per model; metrics_namespace: the Lambdas' EMF namespace;
      thresholds: AlarmThresholds; alarm_email: who is told (None: alarms still exist and show on the dashboard);
      dashboard_name: default <stack>-model-api; shared: the SharedEndpoint, if any (its fleet's instance-hours).

    Attributes: dashboard, dashboard_url, alarms (name -> Alarm), topic and topic_key (None without alarm_email).
    """

    def __init__(self, scope: Construct, construct_id: str, *, api: apigw.RestApi, models: list[WatchedModel],
                 metrics_namespace: str, thresholds: AlarmThresholds = AlarmThresholds(),
                 alarm_email: Optional[str] = None, dashboard_name: Optional[str] = None,
                 shared: Optional[SharedEndpoint] = None):
        super().__init__(scope, construct_id)
        problems = thresholds.problems()
        if alarm_email is not None and not re.match(EMAIL, alarm_email):
            problems.append(f"alarm_email {alarm_email!r} is not an email address")
        if problems:
            raise ValueError(f"ModelApiMonitoring {construct_id}: " + "; ".join(problems))
        self.api, self.models, self.namespace, self.thresholds = api, models, metrics_namespace, thresholds
        self.shared = shared
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.topic = self.topic_key = None
        if alarm_email is not None:
            self._topic(alarm_email)
        self._alarms()
        name = dashboard_name or f"{Aws.STACK_NAME}-model-api"
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name,
                                              default_interval=Duration.hours(3))
        self._widgets()
        self.dashboard_url = Fn.join("", ["https://", Aws.REGION, ".console.aws.amazon.com/cloudwatch/home?region=",
                                          Aws.REGION, "#dashboards:name=", name])

    # ------------------------------------------------------------------------------------------------ topic

    def _topic(self, email: str) -> None:
        # CloudWatch publishes alarms to an encrypted topic only under a customer managed key whose policy lets
        # cloudwatch.amazonaws.com use it (the AWS managed aws/sns key does not: SNS Developer Guide, "Configure
        # AWS KMS permissions for AWS services"). The key goes with the stack (after KMS's 7-day minimum wait).
        self.topic_key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, pending_window=Duration.days(7),
                                 removal_policy=RemovalPolicy.DESTROY,
                                 description="Encrypts the Model API's alarm topic")
        self.topic_key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish", principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"]))  # "*" in a key policy: this key
        self.topic = sns.Topic(self, "AlarmTopic", master_key=self.topic_key, enforce_ssl=True,
                               display_name="Model API alarms")
        sns.Subscription(self, "AlarmEmail", topic=self.topic, protocol=sns.SubscriptionProtocol.EMAIL,
                         endpoint=email)

    # ------------------------------------------------------------------------------------------------ alarms

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, description: str, *,
               periods: int = 1, comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
               missing=cloudwatch.TreatMissingData.NOT_BREACHING) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(self, name, metric=metric, threshold=threshold, evaluation_periods=periods,
                                 datapoints_to_alarm=periods, comparison_operator=comparison,
                                 treat_missing_data=missing, alarm_description=description)
        if self.topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
            alarm.add_ok_action(cloudwatch_actions.SnsAction(self.topic))
        self.alarms[name] = alarm
        return alarm

    def _alarms(self) -> None:
        t = self.thresholds
        self._alarm("Api5xxRate", self.api.metric_server_error(statistic="Average", period=FIVE_MINUTES),
                    t.api_5xx_percent / 100,
                    f"Over {t.api_5xx_percent:g}% of API requests failed with a 5xx in 5 minutes: read the Lambda "
                    "logs (make logs MODEL=...) for the error codes")
        for model in self.models:
            prefix = "".join(part.capitalize() for part in model.name.split("-"))
            self._alarm(f"{prefix}LambdaErrors", model.function.metric_errors(period=FIVE_MINUTES), 1,
                        f"The {model.name} Lambda crashed or timed out (its handler answers every error itself)")
            self._alarm(f"{prefix}LambdaThrottles", model.function.metric_throttles(period=FIVE_MINUTES), 1,
                        f"Lambda refused {model.name} requests: the account's concurrency is exhausted")
            source = model.endpoint or model.component
            if source is None:
                continue  # an endpoint made elsewhere: its own alarms are its owner's
            self._alarm(f"{prefix}Invocation5xx", source.metric("Invocation5XXErrors", period=FIVE_MINUTES),
                        t.endpoint_5xx,
                        f"{t.endpoint_5xx}+ {model.name} model invocations failed in 5 minutes: read the endpoint "
                        "logs (make logs)")
            budget_us = model.request_seconds * 1_000_000 * t.latency_percent / 100
            self._alarm(f"{prefix}ModelLatency", source.metric("ModelLatency", statistic="p90", period=FIVE_MINUTES),
                        budget_us,
                        f"{model.name}'s p90 model latency passed {t.latency_percent:g}% of the "
                        f"{model.request_seconds:g} s a request has: requests are about to time out", periods=2)
            endpoint = model.endpoint
            if endpoint is not None and model.gpus:
                # GPUMemoryUtilization sums the instance's GPUs (up to 100% each).
                self._alarm(f"{prefix}GpuMemory", endpoint.metric(
                    "GPUMemoryUtilization", statistic="Maximum", period=FIVE_MINUTES, namespace=METRICS_NAMESPACE),
                    t.gpu_memory_percent * model.gpus,
                    f"{model.name}'s GPU memory is over {t.gpu_memory_percent:g}% full: larger requests will fail "
                    "with out-of-memory errors", periods=2)
            if endpoint is not None and endpoint.hosting.takes_jobs:
                self._alarm(f"{prefix}JobAge", _endpoint_metric(endpoint, "ApproximateAgeOfOldestRequest",
                                                                FIVE_MINUTES), t.job_age_seconds,
                            f"A {model.name} job has waited over {t.job_age_seconds} s: no instance started, or the "
                            "backlog outgrows max_instances")
            hosting = endpoint.hosting if endpoint is not None else None
            if hosting is not None and hosting.instances() is not None and hosting.autoscaled:
                self._instance_hours(f"{prefix}InstanceHours", model.name, hosting.min_instances,
                                     endpoint.metric("CPUUtilization", statistic="SampleCount",
                                                     period=Duration.days(1), namespace=METRICS_NAMESPACE))
            if endpoint is not None and model.always_on:
                # Each running instance reports CPUUtilization every minute; none reporting is an endpoint with no
                # healthy instance (missing data is breaching).
                self._alarm(f"{prefix}NoInstance", endpoint.metric(
                    "CPUUtilization", statistic="SampleCount", period=FIVE_MINUTES, namespace=METRICS_NAMESPACE),
                    1, f"No {model.name} instance reported for 5 minutes: the endpoint has no healthy instance",
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    missing=cloudwatch.TreatMissingData.BREACHING)

        shared = self.shared
        if shared is not None and shared.max_instance_count > shared.min_instance_count:
            self._instance_hours("SharedInstanceHours", f"the shared endpoint {shared.endpoint_name}",
                                 shared.min_instance_count, cloudwatch.Metric(
                                     namespace=METRICS_NAMESPACE, metric_name="CPUUtilization",
                                     statistic="SampleCount", period=Duration.days(1),
                                     dimensions_map={"EndpointName": shared.endpoint_name,
                                                     "VariantName": VARIANT_NAME}))

    def _instance_hours(self, name: str, what: str, minimum: int, per_instance_minute: cloudwatch.Metric) -> None:
        """Instances that scale (async, autoscaled realtime, a shared fleet) cost what they run: alarm when a
        day's instance-hours pass what the minimum runs by thresholds.instance_hours. Each running instance reports
        CPUUtilization once a minute, so the day's sample count is its instance-minutes (a period of one day: the
        longest an alarm period may be, CloudWatch PutMetricAlarm "Period"). The window slides (the default
        EvaluationWindow, CloudWatch User Guide "Alarm evaluation window": it "advances each time the alarm is
        evaluated", every minute), so it is the last 24 hours, not a calendar day: it fires as soon as they pass."""
        extra = self.thresholds.instance_hours
        hours = 24 * minimum + extra
        self._alarm(name, per_instance_minute, hours * 60,
                    f"{what} ran more than {hours:g} instance-hours in a day ({extra:g} beyond the {minimum} "
                    "always on): a busy day, or requests that keep an instance from scaling in (a leaked key can "
                    "do it under the daily quota); read the dashboard's requests by model",
                    comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD)

    # ------------------------------------------------------------------------------------------------ dashboard

    def _ours(self, metric_name: str, model: str, statistic: str = "Sum") -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=self.namespace, metric_name=metric_name, statistic=statistic,
                                 period=Duration.minutes(1), dimensions_map={"model": model}, label=model)

    def _widgets(self) -> None:
        api, width = self.api, 8
        self.dashboard.add_widgets(cloudwatch.TextWidget(
            markdown="# Model API\nAlarms first; then the API, each model's Lambda and endpoint, and the request "
                     "metrics the Lambdas write (namespace `" + self.namespace + "`).", width=24, height=2))
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=list(self.alarms.values()), width=24,
                                                                title="Alarms"))
        minute = Duration.minutes(1)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API requests and errors", width=width, left=[
                api.metric_count(period=minute), api.metric_client_error(period=minute),
                api.metric_server_error(period=minute)]),
            cloudwatch.GraphWidget(title="API latency (ms)", width=width, left=[
                api.metric_latency(statistic=s, period=minute, label=s) for s in ("p50", "p90", "p99")]),
            cloudwatch.GraphWidget(title="Requests by model (ours)", width=width, left=[
                self._ours("Requests", m.name) for m in self.models]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Latency p90 by model: all, model, glue (ms)", width=width, left=[
                self._ours(name, m.name, "p90").with_(label=f"{m.name} {name}")
                for m in self.models for name in ("Latency", "ModelLatency", "GlueLatency")]),
            cloudwatch.GraphWidget(title="Errors by model (ours)", width=width, left=[
                self._ours(name, m.name).with_(label=f"{m.name} {name}")
                for m in self.models for name in ("ClientErrors", "ServerErrors")]),
            cloudwatch.GraphWidget(title="Images and jobs", width=width, left=[
                self._ours(name, m.name).with_(label=f"{m.name} {name}") for m in self.models
                for name in ("Images", "JobsSubmitted", "JobsCompleted", "JobsFailed")]),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Lambda errors and throttles", width=width, left=[
                metric for m in self.models for metric in (
                    m.function.metric_errors(period=minute, label=f"{m.name} errors"),
                    m.function.metric_throttles(period=minute, label=f"{m.name} throttles"))]),
            cloudwatch.GraphWidget(title="Lambda duration p90 (ms)", width=width, left=[
                m.function.metric_duration(statistic="p90", period=minute, label=m.name) for m in self.models]),
            cloudwatch.GraphWidget(title="Lambda concurrent executions", width=width, left=[
                m.function.metric("ConcurrentExecutions", statistic="Maximum", period=minute, label=m.name)
                for m in self.models]),
        )
        for model in self.models:
            source = model.endpoint or model.component
            if source is None:
                continue
            row = [
                cloudwatch.GraphWidget(title=f"{model.name}: invocations and errors", width=width, left=[
                    source.metric(n, period=minute).with_(label=n)
                    for n in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")]),
                cloudwatch.GraphWidget(title=f"{model.name}: model and overhead latency p90 (µs)", width=width, left=[
                    source.metric(n, statistic="p90", period=minute).with_(label=n)
                    for n in ("ModelLatency", "OverheadLatency")]),
            ]
            endpoint = model.endpoint
            if endpoint is not None and endpoint.hosting.instances() is not None:  # instances to watch
                row.append(cloudwatch.GraphWidget(title=f"{model.name}: instances (%; per core or GPU)", width=width,
                                                  left=[endpoint.metric(n, statistic="Average", period=minute,
                                                                        namespace=METRICS_NAMESPACE).with_(label=n)
                                                        for n in ("CPUUtilization", "GPUUtilization",
                                                                  "GPUMemoryUtilization", "DiskUtilization")],
                                                  right=[endpoint.metric("CPUUtilization", statistic="SampleCount",
                                                                         period=minute, namespace=METRICS_NAMESPACE)
                                                         .with_(label="instances reporting")]))
            if endpoint is not None and endpoint.hosting.takes_jobs:
                row.append(cloudwatch.GraphWidget(title=f"{model.name}: job backlog", width=width, left=[
                    _endpoint_metric(endpoint, "ApproximateBacklogSize", minute, "Average").with_(
                        label="jobs waiting")], right=[
                    _endpoint_metric(endpoint, "ApproximateAgeOfOldestRequest", minute).with_(label="oldest (s)")]))
            self.dashboard.add_widgets(*row)
