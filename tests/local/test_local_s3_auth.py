"""Local S3 refuses presigned URLs the way S3 does: over real sockets against local mode (tampering, a PUT to a GET
URL, anonymous requests), and in-process with a moved clock for expiry (no sleeping in tests)."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from local_rig import request

from local import s3_auth


@pytest.fixture(scope="module")
def image(local):
    status, _, body = request(local, body={"prompt": "p", "width": 64, "height": 64, "steps": 1})
    assert status == 200, body
    return {**local, "image": body["images"][0]}


def fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, data=data), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def with_params(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_the_url_the_api_returns_downloads_the_image(image):
    status, body = fetch(image["image"]["url"])
    assert status == 200 and body.startswith(b"\x89PNG")


def same_day_later(url: str) -> str:
    date = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    return date[:9] + ("235959" if date[9:] != "235959" else "000000") + "Z"


@pytest.mark.parametrize("change, status, code", [
    (lambda url: {"X-Amz-Signature": "0" * 64}, 403, b"SignatureDoesNotMatch"),
    (lambda url: {"X-Amz-Expires": "3600"}, 403, b"SignatureDoesNotMatch"),  # not the life that was signed
    (lambda url: {"X-Amz-Date": same_day_later(url)}, 403, b"SignatureDoesNotMatch"),  # nor the date
    (lambda url: {"X-Amz-Date": "20300101T000000Z"}, 400, b"AuthorizationQueryParametersError"),  # scope mismatch
    (lambda url: {"X-Amz-Credential": "ASIAOTHERKEY/" + parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
                  .split("/", 1)[1]}, 403, b"InvalidAccessKeyId"),
])
def test_a_tampered_url_is_refused(image, change, status, code):
    url = image["image"]["url"]
    got, body = fetch(with_params(url, **change(url)))
    assert got == status and code in body


def test_another_key_or_a_put_with_the_url_is_refused(image):
    url = image["image"]["url"]
    parts = urlsplit(url)
    other = urlunsplit(parts._replace(path=parts.path.replace(".png", "x.png")))
    assert fetch(other)[0] == 403
    status, body = fetch(url, "PUT", b"overwrite")
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert fetch(url)[1].startswith(b"\x89PNG")  # still the original


def test_anonymous_reads_and_listings_are_refused(image):
    parts = urlsplit(image["image"]["url"])
    bare = urlunsplit(parts._replace(query=""))
    assert fetch(bare) == (403, fetch(bare)[1]) and b"AccessDenied" in fetch(bare)[1]
    bucket = "/".join(parts.path.split("/")[:2])
    for listing in (f"{image['s3_url']}{bucket}", f"{image['s3_url']}{bucket}?list-type=2", f"{image['s3_url']}/"):
        status, body = fetch(listing)
        assert status == 403 and b"AccessDenied" in body, listing


def test_expiry_and_future_dates_are_judged_against_the_clock(tmp_path):
    """In-process: a URL signed by a real botocore client, checked at moved clocks."""
    import boto3
    from botocore.config import Config

    secret = "local-secret"
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="ASIALOCAL", aws_secret_access_key=secret,
                          aws_session_token="token", endpoint_url="http://127.0.0.1:9",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    url = client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "images/a.png"}, ExpiresIn=60)
    parts = urlsplit(url)
    headers = {"host": parts.netloc}
    signed = datetime.strptime(parse_qs(parts.query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)

    def at(moment):
        s3_auth.check("GET", parts.path, parts.query, headers, {"ASIALOCAL": secret}.get, moment)

    at(signed)
    at(signed + timedelta(seconds=60))
    for moment, message in ((signed + timedelta(seconds=70), "Request has expired"),
                            (signed - timedelta(minutes=16), "Request is not yet valid")):
        with pytest.raises(s3_auth.Refused, match=message):
            at(moment)
    with pytest.raises(s3_auth.Refused, match="signature we calculated does not match"):
        s3_auth.check("GET", parts.path, parts.query, headers, {"ASIALOCAL": "wrong"}.get, signed)
    with pytest.raises(s3_auth.Refused, match="signature we calculated does not match"):
        s3_auth.check("HEAD", parts.path, parts.query, headers, {"ASIALOCAL": secret}.get, signed)


def test_only_the_credentials_local_mode_issued_sign_for_its_s3_sts_and_sagemaker(image, tmp_path):
    """A client's made-up credentials (what a laptop's environment may hold) are refused as AWS refuses unknown ones;
    this run's credentials, from its owner-only ready file, and the sessions its STS issues are taken."""
    import os
    import stat

    from botocore.exceptions import ClientError
    from local_rig import local_client

    assert stat.S_IMODE(os.stat(image["ready_file"]).st_mode) == 0o600  # the key and the credentials are in it
    bucket = "local-images"
    assert local_client(image, "s3").list_objects_v2(Bucket=bucket)["KeyCount"] >= 1
    issued = image["credentials"]["access_key_id"]
    for credentials, code in (({"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
                               "InvalidAccessKeyId"),
                              ({"aws_access_key_id": issued, "aws_secret_access_key": "guessed"},
                               "SignatureDoesNotMatch")):
        with pytest.raises(ClientError) as caught:
            local_client(image, "s3", **credentials).list_objects_v2(Bucket=bucket)
        assert caught.value.response["Error"]["Code"] == code
        with pytest.raises(ClientError) as caught:  # STS too: no session from made-up credentials
            local_client(image, "sts", **credentials).assume_role(RoleArn="arn:aws:iam::123456789012:role/x",
                                                                 RoleSessionName="test-session")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as caught:  # the runtime API: as AWS's JSON protocols answer
            local_client(image, "sagemaker-runtime", **credentials).invoke_endpoint(
                EndpointName=image["endpoints"]["stable-diffusion"], Body=b"{}", ContentType="application/json")
        assert caught.value.response["Error"]["Code"] in ("UnrecognizedClientException", "InvalidSignatureException")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    session = local_client(image, "sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/x",
                                                     RoleSessionName="test-session")["Credentials"]
    assert local_client(image, "s3", aws_access_key_id=session["AccessKeyId"],
                        aws_secret_access_key=session["SecretAccessKey"],
                        aws_session_token=session["SessionToken"]).list_objects_v2(Bucket=bucket)["KeyCount"] >= 1


def test_the_sagemaker_stand_in_bounds_a_body_as_the_runtime_does(image):
    import socket
    from urllib.parse import urlsplit as split

    url = split(image["endpoint_url"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"POST /endpoints/x/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 7000000\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # the server closes after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"6291456" in answer


def test_a_header_signature_is_judged_against_the_clock_both_ways():
    """S3 and the AWS APIs take a header signature (SigV4 Authorization) dated within 15 minutes of their clock,
    before or after: one from a client whose clock runs 16 minutes ahead is RequestTimeTooSkewed as one 16 minutes
    behind is."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    secret = "local-secret"
    request = AWSRequest("POST", "http://127.0.0.1:9/endpoints/e/invocations", data=b"{}",
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKLOCAL", secret), "sagemaker", "us-east-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:9"
    signed = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)

    def at(moment):
        return s3_auth.check_header("POST", "/endpoints/e/invocations", "", headers, b"{}", {"AKLOCAL": secret}.get,
                                    moment)

    for minutes in (-14, 0, 14):
        assert at(signed + timedelta(minutes=minutes)) == "AKLOCAL"
    for minutes in (-16, 16):  # -16: the signature is dated 16 minutes in the future
        with pytest.raises(s3_auth.Refused) as refused:
            at(signed + timedelta(minutes=minutes))
        assert refused.value.code == "RequestTimeTooSkewed"
