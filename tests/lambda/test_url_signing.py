"""Presigned URLs whose expires_at is the truth: signed as a signer role whose session outlives every URL
(model_api.aws.UrlSigner), against moto's STS in-process. A URL dies at min(X-Amz-Date + X-Amz-Expires, end of the
signing session); the signer keeps the second later than the first, so expires_at is exactly the first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
from lambda_rig import IMAGE_MODEL, REGION, SIGNER_ROLE_ARN, load_handler
from model_api import aws
from model_api.errors import ApiError
from model_api.kinds.text_to_image import MAX_URL_TTL_SECONDS
from moto import mock_aws


@pytest.fixture
def moto_sts():
    with mock_aws():
        yield


def signer_and_store(ttl: int, clock=None, region: str = REGION):
    env = {"AWS_REGION": region}
    options = {"clock": clock} if clock else {}
    signer = aws.UrlSigner(aws.sts_client(env), SIGNER_ROLE_ARN, ttl, **options)
    store = aws.S3ImageStore(aws.s3_client(env), "my-images", signing=(aws.s3_client(env, signer.credentials),
                                                                        signer))
    return signer, store


@pytest.mark.parametrize("region, host", [
    (REGION, f"my-images.s3.{REGION}.amazonaws.com"),
    # us-east-1: botocore keeps the legacy global host, which is us-east-1's own endpoint.
    ("us-east-1", "my-images.s3.amazonaws.com"),
])
def test_urls_are_sigv4_virtual_hosted_and_signed_by_the_signer_session(moto_sts, region, host):
    signer, store = signer_and_store(900, region=region)
    url, expires = store.presign("images/2026/11/21/x.png", 900)
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("https", host, "/images/2026/11/21/x.png")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Credential"][0].endswith(f"/{region}/s3/aws4_request")
    # The signer's session, not the Lambda's: moto hands assumed-role sessions ASIA keys and a token.
    assert query["X-Amz-Credential"][0].startswith("ASIA") and "X-Amz-Security-Token" in query
    assert signer.assumed == 1


def test_expires_at_is_when_the_url_stops_working_and_the_session_outlives_it(moto_sts):
    signer, store = signer_and_store(900)
    url, expires = store.presign("images/a.png", 900)
    signed = datetime.strptime(parse_qs(urlparse(url).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=timezone.utc)
    assert expires == signed + timedelta(seconds=900)
    assert signer.expiry >= expires + timedelta(seconds=aws.UrlSigner.MARGIN_SECONDS)


def test_a_url_that_would_outlive_its_credentials_is_never_handed_out(moto_sts):
    """The last guard behind botocore's refresh window: a signer session ending before the URL is a 500, not a URL
    that stops working early. Without a signer (the Lambda's own credentials) there is nothing to compare."""
    from types import SimpleNamespace

    signer, store = signer_and_store(900)
    store.presign("images/a.png", 900)  # the signer's session is fine
    store._signing = (store.signing_client, SimpleNamespace(expiry=datetime.now(timezone.utc)))
    with pytest.raises(ApiError) as caught:
        store.presign("images/a.png", 900)
    assert (caught.value.status, caught.value.code) == (500, "presign_failed")
    assert caught.value.message == "the signing credentials would expire before the URL"
    unsigned = aws.S3ImageStore(aws.s3_client({"AWS_REGION": REGION}), "my-images")
    assert unsigned.presign("images/a.png", 60)[0].startswith("https://my-images.s3.")


def test_the_session_is_reused_and_renewed_before_it_could_cut_a_url_short(moto_sts):
    now = [datetime.now(timezone.utc)]
    signer, store = signer_and_store(900, clock=lambda: now[0])
    store.presign("images/a.png", 900)
    first_expiry = signer.expiry
    now[0] += timedelta(seconds=1000)  # 2600 s of the session left: plenty for a 900 s URL
    store.presign("images/b.png", 900)
    assert signer.assumed == 1
    # Fewer than ttl + margins left: the next URL is signed with a new session.
    now[0] = first_expiry - timedelta(seconds=900 + aws.UrlSigner.MARGIN_SECONDS)
    store.presign("images/c.png", 900)
    assert signer.assumed == 2


def test_no_url_when_the_signer_role_cannot_be_assumed(monkeypatch, moto_sts):
    from botocore.exceptions import ClientError

    signer, store = signer_and_store(900)

    def denied(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")

    monkeypatch.setattr(signer._sts, "assume_role", denied)
    with pytest.raises(ApiError) as caught:
        store.presign("images/a.png", 900)
    assert (caught.value.status, caught.value.code) == (500, "presign_failed")


def test_a_ttl_that_no_role_session_can_cover_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        aws.UrlSigner(None, SIGNER_ROLE_ARN, 3600)
    aws.UrlSigner(None, SIGNER_ROLE_ARN, MAX_URL_TTL_SECONDS)


def test_the_handler_signs_as_the_role_in_its_environment(moto_sts):
    handler = load_handler({"AWS_REGION": REGION, "ENDPOINT_NAME": "e", "BUCKET_NAME": "my-images", **IMAGE_MODEL,
                            "SIGNER_ROLE_ARN": "arn:aws:iam::123456789012:role/other-signer",
                            "URL_TTL_SECONDS": "600"})
    assert handler.store.signer.role_arn == "arn:aws:iam::123456789012:role/other-signer"
    url, expires = handler.store.presign("images/x.png", 600)
    assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["600"]


@pytest.mark.parametrize("code, status, error", [
    ("AccessDenied", 500, "misconfigured"), ("NoSuchBucket", 500, "misconfigured"),
    ("AllAccessDisabled", 500, "misconfigured"), ("InvalidAccessKeyId", 500, "misconfigured"),
    ("KMS.DisabledException", 500, "misconfigured"), ("KMS.NotFoundException", 500, "misconfigured"),
    ("SlowDown", 503, "storage_unavailable"), ("InternalError", 503, "storage_unavailable"),
    ("", 503, "storage_unavailable"),
])
def test_storage_failures_map_to_a_deployment_error_or_a_retryable_503(code, status, error):
    from botocore.exceptions import ClientError
    from model_api.aws import storage_error

    mapped = storage_error(ClientError({"Error": {"Code": code, "Message": "m"}}, "PutObject"))
    assert (mapped.status, mapped.code) == (status, error)
    assert (mapped.retry_after is None) == (status == 500)


def test_the_s3_client_overlaps_a_requests_uploads_on_its_own_connections():
    from model_api import aws

    # The image store uploads up to 8 objects at once (S3ImageStore max_workers); 16 connections leave room for
    # the signer's client and a retry without queueing behind the pool.
    config = aws.s3_client({"AWS_REGION": "us-east-1"}).meta.config
    assert config.max_pool_connections == 16 and config.tcp_keepalive is True
    assert (config.connect_timeout, config.read_timeout) == (2, 5)


def test_a_role_that_may_not_invoke_is_a_deployment_error_said_as_such():
    from botocore.exceptions import ClientError
    from model_api import aws

    for code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        error = aws.invoke_error(ClientError({"Error": {"Code": code, "Message": "no"}}, "InvokeEndpoint"), "ep")
        assert (error.status, error.code, error.message) == (
            500, "misconfigured", "this API is not allowed to invoke its endpoint (deployment error)")


def test_a_model_that_does_not_answer_in_time_is_a_504_saying_what_to_lower():
    from botocore.exceptions import ReadTimeoutError

    class Slow:
        def invoke_endpoint(self, **kwargs):
            raise ReadTimeoutError(endpoint_url="https://runtime")

    with pytest.raises(ApiError) as caught:
        aws.SageMakerEndpoint(Slow(), "ep").invoke(b"{}", "application/json", "image/png")
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        504, "model_timeout", "the model did not answer in time; try fewer steps, fewer images or a smaller size")


def test_the_image_store_uploads_at_most_eight_objects_at_once():
    store = aws.S3ImageStore(client=None, bucket="b")
    assert store._pool._max_workers == 8
    assert aws.S3ImageStore(client=None, bucket="b", max_workers=3)._pool._max_workers == 3
