"""Models hosted async: POST queues a job (202) with the request in S3, GET /jobs/<id> reads its state from S3 and,
once SageMaker has written the answer, stores the images as objects of their own and answers the synchronous
route's body. S3 is moto; the endpoint is faked at the botocore level (the real client builds the request)."""

from __future__ import annotations

import json
import re
import urllib.request
from urllib.parse import urlsplit

import pytest
from lambda_rig import FakeAsyncEndpoint, api_event, tiny_png
from model_api.routes import ModelInfo, catalog_to_json

ASYNC_ENV = {"MODEL_HOSTING": "async", "JOB_TIMEOUT_SECONDS": "1200", "JOB_TTL_SECONDS": "3600"}


def catalog(*models: ModelInfo) -> str:
    return catalog_to_json(list(models))


SD = ModelInfo("stable-diffusion", "text-to-image", "test-stable-diffusion", "ml.g5.xlarge", "async")
GPT2 = ModelInfo("gpt2", "text-generation", "test-gpt2", "ml.g5.xlarge", "async")


@pytest.fixture
def jobs(make_rig):
    rig = make_rig(**ASYNC_ENV, MODEL_CATALOG=catalog(SD))
    rig.async_endpoint = FakeAsyncEndpoint(rig.handler.endpoint._client, rig.bucket.name)
    return rig


def job_event(job_id: str, resource="/jobs/{job_id}"):
    event = api_event("GET", resource=resource)
    event["pathParameters"] = {"job_id": job_id}
    event["path"] = resource.replace("{job_id}", job_id)
    return event


def put_uri(rig, uri: str, data: bytes) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    rig.bucket.client.put_object(Bucket=bucket, Key=key, Body=data)


def read_key(rig, key: str) -> bytes:
    return rig.bucket.client.get_object(Bucket=rig.bucket.name, Key=key)["Body"].read()


def submit(rig, body=None, resource="/images"):
    event = api_event("POST", body or {"prompt": "a tiger", "num_images": 2, "seed": 7}, resource=resource)
    event["requestContext"].update({"domainName": "abc.execute-api.eu-west-1.amazonaws.com",
                                    "path": f"/v1{resource}"})
    return rig.call(event)


def test_submit_answers_202_with_an_unguessable_job_and_queues_the_validated_request(jobs):
    response = submit(jobs)
    assert response["statusCode"] == 202, response["body"]
    body = response["json"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["job_id"]) and body["status"] == "queued"
    assert body["status_url"] == f"https://abc.execute-api.eu-west-1.amazonaws.com/v1/jobs/{body['job_id']}"
    (sent,) = jobs.async_endpoint.requests
    headers = sent["headers"]
    assert sent["url"].endswith("/endpoints/test-stable-diffusion/async-invocations")
    assert headers["X-Amzn-SageMaker-Inference-Id"] == body["job_id"]
    assert headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "1200"
    assert headers["X-Amzn-SageMaker-RequestTTLSeconds"] == "3600"
    assert headers["X-Amzn-SageMaker-Accept"] == "application/x-png-sequence"
    input_key = f"jobs/{body['job_id']}/input-stable-diffusion.json"
    assert headers["X-Amzn-SageMaker-InputLocation"] == f"s3://{jobs.bucket.name}/{input_key}"
    queued = json.loads(read_key(jobs, input_key))
    assert queued["inputs"] == "a tiger" and queued["parameters"]["num_images_per_prompt"] == 2
    assert queued["parameters"]["seed"] == 7
    assert jobs.stored_keys() == [input_key]  # one PUT: the record travels as the input's metadata
    record = json.loads(jobs.bucket.client.head_object(Bucket=jobs.bucket.name, Key=input_key)["Metadata"]["job"])
    assert record == {"job_id": body["job_id"], "model": "stable-diffusion", "action": "images",
                      "accept": "application/x-png-sequence", "created_at": body["submitted_at"],
                      "request_id": body["request_id"], "meta": {"seed": 7, "num_images": 2}}
    assert submit(jobs)["json"]["job_id"] != body["job_id"]


def test_every_action_path_of_an_async_model_queues_a_job(jobs):
    for resource in ("/images", "/models/stable-diffusion", "/models/stable-diffusion/jobs"):
        assert submit(jobs, resource=resource)["statusCode"] == 202
    event = api_event("GET", query={"prompt": "p"}, resource="/images")
    assert jobs.call(event)["statusCode"] == 202


def test_a_job_is_queued_then_done_with_each_image_stored_once_and_fresh_urls_each_poll(jobs):
    job_id = submit(jobs)["json"]["job_id"]
    polled = jobs.call(job_event(job_id))
    assert polled["statusCode"] == 200 and polled["json"]["status"] == "queued"
    assert polled["json"]["job_id"] == job_id and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", polled["json"]["submitted_at"])
    pngs = [tiny_png(8, 8, 1), tiny_png(8, 8, 2)]
    put_uri(jobs, f"{jobs.async_endpoint.output_path}/{job_id}.out", b"".join(pngs))
    done = jobs.call(job_event(job_id))["json"]
    assert done["status"] == "done" and done["seed"] == 7 and done["prompt"] == "a tiger"
    keys = [image["key"] for image in done["images"]]
    assert [re.fullmatch(rf"images/\d{{4}}/\d{{2}}/\d{{2}}/{job_id}-{i}\.png", k) is not None
            for i, k in enumerate(keys)] == [True, True]
    assert [read_key(jobs, k) for k in keys] == pngs
    for image, png in zip(done["images"], pngs):
        with urllib.request.urlopen(image["url"], timeout=10) as answer:
            assert answer.read() == png
    puts = []
    jobs.handler.store.client.meta.events.register("before-send.s3.PutObject", lambda **kw: puts.append(1))
    again = jobs.call(job_event(job_id))["json"]
    assert [i["key"] for i in again["images"]] == keys and puts == []  # stored once, read from result.json
    saved = json.loads(read_key(jobs, f"jobs/{job_id}/result.json"))
    assert saved["result"] == {"keys": keys, "prompt": "a tiger", "seed": 7}
    assert saved["record"]["job_id"] == job_id


def test_a_failed_job_answers_the_models_error(jobs):
    job_id = submit(jobs)["json"]["job_id"]
    put_uri(jobs, f"{jobs.async_endpoint.failure_path}/{job_id}-error.out", b"CUDA out of memory. " + b"x" * 500)
    body = jobs.call(job_event(job_id))["json"]
    assert body["status"] == "failed" and body["error"]["code"] == "model_error"
    assert body["error"]["message"] == ("the model failed: out of accelerator memory: ask for less at "
                                        "once (fewer or smaller images, fewer tokens), or retry")
    assert jobs.call(job_event(job_id))["json"] == body  # the outcome is kept: the same answer on every poll
    refused = submit(jobs)["json"]["job_id"]
    put_uri(jobs, f"{jobs.async_endpoint.failure_path}/{refused}-error.out", b"invalid input: width too big")
    assert jobs.call(job_event(refused))["json"]["error"] == {
        "code": "model_rejected_input", "message": "the model refused the input: invalid input: width too big"}


def test_an_answer_that_is_not_images_fails_the_job_and_stores_no_image(jobs):
    job_id = submit(jobs)["json"]["job_id"]
    put_uri(jobs, f"{jobs.async_endpoint.output_path}/{job_id}.out", b"not a png")
    body = jobs.call(job_event(job_id))["json"]
    assert body["status"] == "failed" and body["error"]["code"] == "bad_model_response"
    assert not [k for k in jobs.stored_keys() if k.startswith("images/")]


@pytest.mark.parametrize("job_id", ["0" * 32, "not-a-job", "A" * 32, "0" * 33, "../../images"])
def test_unknown_or_malformed_job_ids_are_404(jobs, job_id):
    response = jobs.call(job_event(job_id))
    assert response["statusCode"] == 404 and response["json"]["error"]["code"] == "job_not_found"


def test_a_model_route_reads_only_its_own_jobs(make_rig):
    rig = make_rig(**ASYNC_ENV, MODEL_CATALOG=catalog(SD, GPT2))
    rig.async_endpoint = FakeAsyncEndpoint(rig.handler.endpoint._client, rig.bucket.name)
    job_id = submit(rig)["json"]["job_id"]
    assert rig.call(job_event(job_id, "/models/stable-diffusion/jobs/{job_id}"))["json"]["status"] == "queued"
    text = make_rig(**ASYNC_ENV, MODEL_CATALOG=catalog(SD, GPT2), MODEL_NAME="gpt2", MODEL_KIND="text-generation",
                    MODEL_PROTOCOL="tgi", ENDPOINT_NAME="test-gpt2")
    response = text.call(job_event(job_id, "/models/gpt2/jobs/{job_id}"))
    assert response["statusCode"] == 404
    # Finished, its result stored: still not another model's to read.
    put_uri(rig, f"{rig.async_endpoint.output_path}/{job_id}.out", tiny_png(8, 8, 1) + tiny_png(8, 8, 2))
    assert rig.call(job_event(job_id, "/models/stable-diffusion/jobs/{job_id}"))["json"]["status"] == "done"
    response = text.call(job_event(job_id, "/models/gpt2/jobs/{job_id}"))
    assert (response["statusCode"], response["json"]["error"]["code"]) == (404, "job_not_found")


def test_a_job_of_a_model_the_deployment_no_longer_serves_is_not_found(make_rig):
    """A redeploy without the image model: its jobs stay in the bucket until they expire, and GET /jobs/<id> (now
    the text model's route) says they are gone, not 500 (the text kind has no action that could read them)."""
    rig = make_rig(**ASYNC_ENV, MODEL_CATALOG=catalog(SD))
    rig.async_endpoint = FakeAsyncEndpoint(rig.handler.endpoint._client, rig.bucket.name)
    job_id = submit(rig)["json"]["job_id"]
    put_uri(rig, f"{rig.async_endpoint.output_path}/{job_id}.out", tiny_png(8, 8, 1) + tiny_png(8, 8, 2))
    after = make_rig(**ASYNC_ENV, MODEL_CATALOG=catalog(GPT2), MODEL_NAME="gpt2", MODEL_KIND="text-generation",
                     MODEL_PROTOCOL="tgi", ENDPOINT_NAME="test-gpt2")
    response = after.call(job_event(job_id))
    assert (response["statusCode"], response["json"]["error"]["code"]) == (404, "job_not_found")


def test_an_invalid_request_is_400_and_queues_nothing(jobs):
    response = submit(jobs, {"prompt": "", "width": 500})
    assert response["statusCode"] == 400 and response["json"]["error"]["code"] == "invalid_request"
    assert jobs.async_endpoint.requests == [] and jobs.stored_keys() == []


def test_a_job_may_take_what_the_job_timeout_allows_not_what_one_call_may(make_rig):
    env = {**ASYNC_ENV, "MODEL_CATALOG": catalog(SD), "IMAGE_STEP_SECONDS": "0.09", "INSTANCE_TYPE": "ml.g5.xlarge",
           "IMAGE_TIME_BUDGET_SECONDS": "1200"}
    rig = make_rig(**env)
    rig.async_endpoint = FakeAsyncEndpoint(rig.handler.endpoint._client, rig.bucket.name)
    heavy = {"prompt": "p", "num_images": 4, "steps": 50, "width": 768, "height": 768}
    assert submit(rig, heavy)["statusCode"] == 202  # ~48 s of work: over any API call, well inside a job


def test_an_endpoint_that_refuses_the_job_leaves_nothing_behind(jobs):
    jobs.async_endpoint.fails(400, "ValidationError", "Endpoint test-stable-diffusion of account 1 not found.")
    response = submit(jobs)
    assert response["statusCode"] == 503 and response["json"]["error"]["code"] == "endpoint_unavailable"
    assert jobs.stored_keys() == []


def test_a_text_job_answers_the_synchronous_body(make_rig):
    rig = make_rig(**ASYNC_ENV, MODEL_CATALOG=catalog(GPT2), MODEL_NAME="gpt2", MODEL_KIND="text-generation",
                   MODEL_PROTOCOL="tgi", ENDPOINT_NAME="test-gpt2")
    rig.async_endpoint = FakeAsyncEndpoint(rig.handler.endpoint._client, rig.bucket.name, "gpt2")
    submitted = submit(rig, {"inputs": "Once upon"}, resource="/generate")
    assert submitted["statusCode"] == 202
    job_id = submitted["json"]["job_id"]
    put_uri(rig, f"{rig.async_endpoint.output_path}/{job_id}.out", json.dumps([{"generated_text": " a time"}]).encode())
    body = rig.call(job_event(job_id))["json"]
    assert body["status"] == "done" and body["generated_text"] == " a time"
    assert body["request_id"] == submitted["json"]["request_id"]


def test_status_url_follows_the_host_without_a_stage_locally():
    from model_api.jobs import status_url

    event = {"headers": {"Host": "127.0.0.1:8000", "X-Forwarded-Proto": "http"},
             "requestContext": {"stage": "v1", "path": "/v1/images"}}
    assert status_url(event, "ab") == "http://127.0.0.1:8000/v1/jobs/ab"
    event["requestContext"]["path"] = "/images"
    assert urlsplit(status_url(event, "ab")).path == "/jobs/ab"


def test_an_outcome_named_otherwise_is_found_through_the_locations_saved_at_submit(jobs):
    jobs.async_endpoint.output_path = f"s3://{jobs.bucket.name}/jobs/output/stable-diffusion/renamed"
    job_id = submit(jobs)["json"]["job_id"]
    saved = json.loads(read_key(jobs, f"jobs/{job_id}/job.json"))
    assert saved["output"] == f"{jobs.async_endpoint.output_path}/{job_id}.out"
    put_uri(jobs, saved["output"], tiny_png() * 2)
    assert jobs.call(job_event(job_id))["json"]["status"] == "done"


def test_a_finished_job_is_one_get_per_poll(jobs):
    job_id = submit(jobs)["json"]["job_id"]
    put_uri(jobs, f"{jobs.async_endpoint.output_path}/{job_id}.out", tiny_png() * 2)
    assert jobs.call(job_event(job_id))["json"]["status"] == "done"
    calls = []
    jobs.handler.store.client.meta.events.register("before-send.s3", lambda event_name, **_: calls.append(
        event_name.split(".")[-1]))
    assert jobs.call(job_event(job_id))["json"]["status"] == "done"
    assert calls == ["GetObject"]


def test_jobs_are_counted_when_submitted_and_once_when_they_finish(jobs, caplog):
    import logging

    from lambda_rig import request_lines
    with caplog.at_level(logging.INFO, logger="model_api"):
        job_id = submit(jobs)["json"]["job_id"]
        jobs.call(job_event(job_id))  # still queued
        put_uri(jobs, f"{jobs.async_endpoint.output_path}/{job_id}.out", tiny_png(8, 8, 1) + tiny_png(8, 8, 2))
        jobs.call(job_event(job_id))  # finishes it: two images made now
        jobs.call(job_event(job_id))  # a later poll shows them again
        failed = submit(jobs)["json"]["job_id"]
        put_uri(jobs, f"{jobs.async_endpoint.failure_path}/{failed}-error.out", b"CUDA out of memory")
        jobs.call(job_event(failed))
    lines = request_lines(caplog)
    counted = [{n: line[n] for n in ("JobsSubmitted", "JobsCompleted", "JobsFailed", "Images") if n in line}
               for line in lines]
    assert counted == [{"JobsSubmitted": 1}, {}, {"JobsCompleted": 1, "Images": 2}, {}, {"JobsSubmitted": 1},
                       {"JobsFailed": 1}]
    assert [line["job"] for line in lines if "job" in line] == ["submitted", "completed", "submitted", "failed"]
    assert all("ModelLatency" not in line for line in lines)  # queueing is not the model's time


@pytest.mark.parametrize("text, message", [
    ("invalid input: width must be a multiple of 8", "the model refused the input: invalid input: width must be a "
                                                     "multiple of 8"),
    ('Traceback (most recent call last):\n  File "/opt/ml/code/inference.py", line 9\nValueError: invalid input: '
     "seed must be whole", "the model refused the input: invalid input: seed must be whole"),
    ("invalid input: " + "x" * 300, "the model refused the input: invalid input: " + "x" * 185),
    ("RuntimeError: CUDA error: device-side assert triggered at /opt/conda/lib/python3.11/site-packages/torch",
     "the model failed: an error inside the model container (details in the function's log, under this request's id)"),
    # A failure's own words, however plain, are never passed on: only a refusal's are.
    ("the worker stopped", "the model failed: an error inside the model container (details in the function's log, "
                           "under this request's id)"),
])
def test_a_failed_jobs_message_is_a_short_safe_summary_of_the_containers(text, message):
    from model_api.jobs import failure_error

    assert failure_error(text.encode())["message"] == message


def test_a_failure_object_that_is_not_utf8_is_still_summarized():
    from model_api.jobs import failure_error

    assert failure_error(b"invalid input: width \xff too big")["message"] == \
        "the model refused the input: invalid input: width \ufffd too big"


class _FinishedJobStore:
    """A job store whose job has its model's answer, and which records what is saved."""

    def __init__(self):
        from model_api.jobs import JobRecord

        self.saved: dict = {}
        self.job = JobRecord("j" * 32, "sd", "images", "application/json", "2026-12-05T00:00:00Z", "req-1")

    def result(self, job_id):
        return self.saved.get("result.json")

    def files(self, job_id):
        return ["input-sd.json"]

    def record(self, job_id, owner):
        return self.job

    def outcome(self, job_id, owner, locations):
        return b'{"generated_images": []}', False

    def put_json(self, job_id, name, data):
        self.saved[name] = data


@pytest.mark.parametrize("status, code, recorded", [(503, "storage_unavailable", False), (502, "bad_model_response",
                                                                                          True)])
def test_a_storage_outage_while_a_job_is_finished_is_a_503_and_the_job_stays_to_finish(status, code, recorded):
    """Storing the job's images failed (S3 down): the caller is told to come back (503), and nothing is recorded, so
    the next poll finishes the job. A model's unusable answer (502-class) fails the job for good."""
    from model_api import jobs as jobs_module
    from model_api.errors import ApiError

    store, told = _FinishedJobStore(), []

    def finish(record, answer, load_input):
        raise ApiError(status, code, "S3 is not available" if status == 503 else "no images")

    call = lambda: jobs_module.status(store.job.job_id, store=store, finish=finish,  # noqa: E731
                                      respond=lambda record, result: result, finished=told.append)
    if recorded:
        answer = call()
        assert (answer["status"], answer["error"]["code"]) == ("failed", code) and told == ["failed"]
        assert json.loads(store.saved["result.json"])["error"] == {"code": code, "message": "no images"}
    else:
        with pytest.raises(ApiError) as outage:
            call()
        assert (outage.value.status, outage.value.code) == (503, "storage_unavailable")
        assert store.saved == {} and told == []


def test_a_function_that_is_not_async_reads_no_jobs(make_rig):
    """Routing sends job reads to async models only; should one reach another function (a deployment error), it says
    so instead of failing on a store it does not have."""
    from model_api.errors import ApiError

    rig = make_rig(MODEL_CATALOG=catalog(ModelInfo("stable-diffusion", "text-to-image", "e", "ml.g5.xlarge")))
    with pytest.raises(ApiError) as caught:
        rig.handler._job_store()
    assert (caught.value.status, caught.value.code) == (500, "misconfigured")
