"""make deploy / destroy / logs: the wrappers around the CDK CLI, with the CLI replaced by a recorder and AWS by
moto or botocore's Stubber."""

from __future__ import annotations

import io
import time

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ops import deploy, destroy, logs

ENDPOINT_GROUP = "/aws/sagemaker/Endpoints/sagemakermodelapi-stable-diffusion"


class Recorder:
    def __init__(self, code=0):
        self.code, self.calls = code, []

    def __call__(self, verb, stack, args):
        self.calls.append((verb, stack, list(args)))
        return self.code


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def put_events(session, group, messages):
    client = session.client("logs")
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="AllTraffic/i-1")
    now = int(time.time() * 1000)
    client.put_log_events(logGroupName=group, logStreamName="AllTraffic/i-1",
                          logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])


def test_deploy_runs_cdk_without_rollback_and_passes_the_settings_on(aws):
    recorder, out = Recorder(), io.StringIO()
    code = deploy.main(["--skip-preflight", "-c", "models=gpt2-tgi", "--require-approval", "never"], run=recorder,
                       session=aws, out=out)
    assert code == 0
    assert recorder.calls == [("deploy", "SageMakerModelApi",
                               ["--no-rollback", "-c", "models=gpt2-tgi", "--require-approval", "never"])]
    assert "make logs MODEL=gpt2-tgi" in out.getvalue()


def test_a_preflight_blocker_stops_the_deploy_before_cdk_runs():
    class NoCredentials:
        region = "us-east-1"

        def __call__(self, service):
            client = boto3.client(service, region_name="us-east-1")
            stub = Stubber(client)
            stub.add_client_error("get_caller_identity", "InvalidClientTokenId", "bad token")
            stub.activate()
            return client

    recorder, out = Recorder(), io.StringIO()
    assert deploy.main([], run=recorder, clients_factory=lambda region: NoCredentials(), out=out) == 1
    assert recorder.calls == [] and "BLOCKER  credentials" in out.getvalue()


def test_a_failed_deploy_leaves_and_prints_the_containers_explanation(aws):
    put_events(aws, ENDPOINT_GROUP, ["Downloading weights", "OSError: [Errno 28] No space left on device"])
    out = io.StringIO()
    assert deploy.main(["--skip-preflight"], run=Recorder(code=1), session=aws, out=out) == 1
    text = out.getvalue()
    assert "cdk deploy failed (exit 1)" in text
    assert "  | OSError: [Errno 28] No space left on device" in text
    assert f"last 2 lines of {ENDPOINT_GROUP}; more: make logs MODEL=stable-diffusion" in text
    assert "make destroy: it removes everything" in text


def test_settings_errors_stop_before_anything_runs():
    recorder, out = Recorder(), io.StringIO()
    assert deploy.main(["-c", "api_logging=maybe"], run=recorder, out=out) == 2 and recorder.calls == []
    assert "api_logging must be one of" in out.getvalue()


class OutputsSession:
    """A session whose CloudFormation answers describe_stacks with given outputs (then: the stack is gone)."""

    region_name = "us-east-1"

    def __init__(self, outputs, gone_after=True):
        self.client_ = boto3.client("cloudformation", region_name="us-east-1")
        stub = Stubber(self.client_)
        stub.add_response("describe_stacks", {"Stacks": [{"StackName": "SageMakerModelApi", "CreationTime": "2026-01-01",
                                                          "StackStatus": "CREATE_COMPLETE", "Outputs": [
                                                              {"OutputKey": k, "OutputValue": v}
                                                              for k, v in outputs.items()]}]})
        if gone_after:
            stub.add_client_error("describe_stacks", "ValidationError", "Stack with id SageMakerModelApi does not exist")
        else:
            stub.add_response("describe_stacks", {"Stacks": [{"StackName": "SageMakerModelApi",
                                                              "CreationTime": "2026-01-01",
                                                              "StackStatus": "CREATE_COMPLETE"}]})
        stub.activate()

    def client(self, name):
        return self.client_


def test_destroy_says_nothing_is_left_behind_by_default():
    out, recorder = io.StringIO(), Recorder()
    assert destroy.main([], run=recorder, session=OutputsSession({"BucketName": "b"}), out=out,
                        ask=lambda question: "y") == 0
    assert "Nothing left behind" in out.getvalue()
    # Confirmed by the person at the terminal: cdk destroy is not asked to confirm again.
    assert recorder.calls == [("destroy", "SageMakerModelApi", ["--force"])]


def test_destroy_asks_at_a_terminal_and_deletes_nothing_unless_told_yes():
    out, recorder, questions = io.StringIO(), Recorder(), []
    assert destroy.main([], run=recorder, session=OutputsSession({"BucketName": "b"}), out=out,
                        ask=lambda question: questions.append(question) or "n") == 1
    assert recorder.calls == []
    assert questions == ["Delete the stack SageMakerModelApi in us-east-1 and everything it made? [y/N] "]


def test_destroy_without_a_terminal_needs_force_and_says_so():
    out, recorder = io.StringIO(), Recorder()
    assert destroy.main([], run=recorder, session=OutputsSession({"BucketName": "b"}), out=out) == 1
    assert recorder.calls == []
    assert out.getvalue() == ("make destroy: no terminal to confirm at; run `make destroy FORCE=1` to delete the "
                              "stack without asking (scripts and CI)\n")
    # FORCE=1 (the Makefile passes --force): deleted without a question, and no stray -- reaches cdk.
    assert destroy.main(["--force", "--", "-c", "stack_name=SageMakerModelApi"], run=recorder,
                        session=OutputsSession({"BucketName": "b"}), out=io.StringIO()) == 0
    assert recorder.calls == [("destroy", "SageMakerModelApi", ["--force", "-c", "stack_name=SageMakerModelApi"])]


def test_destroy_of_a_stack_that_is_not_there_says_where_it_looked():
    class Missing(OutputsSession):
        def __init__(self):
            self.client_ = boto3.client("cloudformation", region_name="us-east-1")
            stub = Stubber(self.client_)
            stub.add_client_error("describe_stacks", "ValidationError", "Stack with id SageMakerModelApi does not exist")
            stub.activate()

    out, recorder = io.StringIO(), Recorder()
    assert destroy.main(["--force"], run=recorder, session=Missing(), out=out) == 0
    assert recorder.calls == []
    assert "no stack SageMakerModelApi in us-east-1: nothing to delete" in out.getvalue()


def test_a_failed_destroy_says_what_to_do():
    out = io.StringIO()
    assert destroy.main(["--force"], run=Recorder(code=1), session=OutputsSession({}), out=out) == 1
    assert "cdk destroy failed (exit 1); its last lines above say why. Run make destroy again" in out.getvalue()


def test_destroy_names_what_the_settings_asked_to_keep_and_how_to_remove_it():
    out = io.StringIO()
    session = OutputsSession({"BucketName": "img-bucket", "ApiGatewayCloudWatchRoleName": "Stack-AccountCwRole-1"})
    recorder = Recorder()
    assert destroy.main(["-c", "retain_bucket=true", "-c", "api_logging=create-role", "--force"], run=recorder,
                        session=session, out=out) == 0
    text = out.getvalue()
    assert recorder.calls == [("destroy", "SageMakerModelApi", ["--force", "-c", "retain_bucket=true", "-c",
                                                                "api_logging=create-role"])]
    assert "Left behind on purpose" in text and "aws iam delete-role --role-name Stack-AccountCwRole-1" in text
    assert "every API there logs through it" in text and "aws s3 rb s3://img-bucket --force" in text


def test_a_cancelled_destroy_is_not_reported_as_done():
    out = io.StringIO()
    assert destroy.main(["--force"], run=Recorder(), session=OutputsSession({}, gone_after=False), out=out) == 1
    assert "still exists" in out.getvalue()


def test_logs_print_the_endpoint_and_lambda_groups_in_time_order(aws, monkeypatch):
    put_events(aws, ENDPOINT_GROUP, ["model loaded", "ping ok"])
    monkeypatch.setattr(logs, "function_log_group", lambda cfn, stack, model: "/aws/lambda/sd-function")
    put_events(aws, "/aws/lambda/sd-function", ['{"status":200}'])
    out = io.StringIO()
    assert logs.main(["stable-diffusion", "--no-follow", "--since", "1h"], session=aws, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"logs: endpoint {ENDPOINT_GROUP}, lambda /aws/lambda/sd-function")
    assert set(lines[1:]) == {"[endpoint] model loaded", "[endpoint] ping ok", '[lambda] {"status":200}'}


def test_logs_follow_prints_each_line_once_and_waits_for_groups_not_made_yet(aws):
    client = aws.client("logs")
    rounds = []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) == 1:
            put_events(aws, ENDPOINT_GROUP, ["container started"])
        else:
            raise KeyboardInterrupt

    out = io.StringIO()
    assert logs.follow(client, {"endpoint": ENDPOINT_GROUP}, 60, True, out=out, sleep=sleep) == 0
    assert out.getvalue().splitlines() == ["[endpoint] container started"]


def test_logs_of_a_shared_model_follow_its_component_too(aws, monkeypatch):
    monkeypatch.setattr(logs, "function_log_group", lambda cfn, stack, model: None)
    put_events(aws, "/aws/sagemaker/InferenceComponents/sagemakermodelapi-gpt2-cpu", ["component started"])
    out = io.StringIO()
    shared = ["-c", "models=gpt2-cpu", "-c", "gpt2-cpu.hosting=shared"]
    assert logs.main(["gpt2-cpu", "--no-follow", *shared], session=aws, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == ("logs: endpoint /aws/sagemaker/Endpoints/sagemakermodelapi-shared, component "
                        "/aws/sagemaker/InferenceComponents/sagemakermodelapi-gpt2-cpu")
    assert lines[1:] == ["[component] component started"]


def test_logs_refuses_an_unknown_model():
    out = io.StringIO()
    assert logs.main(["nope"], out=out) == 2 and "no model 'nope'" in out.getvalue()


def test_deploy_says_a_scale_to_zero_model_is_unwatched_even_when_it_skips_preflight(aws):
    out = io.StringIO()
    assert deploy.main(["--skip-preflight", "-c", "hosting=async"], run=Recorder(), session=aws, out=out) == 0
    assert "warning  spend watch  stable-diffusion scales to zero" in out.getvalue()
    assert "-> -c alarm_email=" in out.getvalue()
    quiet = io.StringIO()
    deploy.main(["--skip-preflight"], run=Recorder(), session=aws, out=quiet)
    assert "spend watch" not in quiet.getvalue()
