"""Signatures checked the way AWS checks them, in front of moto's S3 and STS (which accept any signature, made-up
credentials, an expired URL, a PUT to a GET URL and anonymous requests) and of the local SageMaker endpoint.

A WSGI layer around the local S3 server:
- a request with a query-string signature (a presigned URL) must carry a valid AWS Signature Version 4 for its
  method, path, query and host, signed by credentials this machine issued (the URL signer's session from moto's
  STS), dated no later than now and not past X-Amz-Expires; otherwise 403 with S3's XML error
  (SignatureDoesNotMatch, or AccessDenied "Request has expired" / "Request is not yet valid");
- a request with neither a signature nor an Authorization header is anonymous: 403 AccessDenied, as S3 answers for
  a bucket that blocks public access (object reads and bucket listings alike);
- a request signed in the Authorization header (boto3's own calls: the Lambda's, the URL signer's AssumeRole) must
  be signed by credentials this machine issued (local mode's own for this run, or a session moto's STS issued):
  made-up ones are InvalidAccessKeyId, a wrong signature SignatureDoesNotMatch, a date 15 minutes off
  RequestTimeTooSkewed (S3 API Reference, "Error responses"), as AWS answers them.

The signature is recomputed from the request per the SigV4 specification (canonical request, string to sign,
derived key), not with botocore's signer, so a URL botocore makes is checked by an independent implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional
from urllib.parse import parse_qsl, quote

# S3 accepts a presigned URL whose X-Amz-Date is at most this far in the future (clock skew).
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_EXPIRES_SECONDS = 7 * 24 * 3600  # SigV4's own cap


def _uri_encode(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted((_uri_encode(k), _uri_encode(v)) for k, v in pairs if k != "X-Amz-Signature")
    return "&".join(f"{k}={v}" for k, v in encoded)


def expected_signature(secret: str, method: str, path: str, pairs: list[tuple[str, str]], headers: dict,
                       signed_headers: list[str], date: str, scope: str, payload: str = "UNSIGNED-PAYLOAD") -> str:
    """SigV4 of a request as AWS computes it (AWS General Reference, "Create a signed AWS API request"): payload is
    the hex SHA-256 of the body, or what x-amz-content-sha256 says (S3's UNSIGNED-PAYLOAD for presigned URLs)."""
    canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed_headers)
    canonical_request = "\n".join([method, _uri_encode(path, safe="/-_.~"), canonical_query(pairs),
                                   canonical_headers, ";".join(signed_headers), payload])
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class Refused(Exception):
    """S3's refusal: 400 for a malformed query-string authorization, 403 for everything else."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message
        self.status = 400 if code == "AuthorizationQueryParametersError" else 403


def check(method: str, path: str, query: str, headers: dict, secret_for: Callable[[str], Optional[str]],
          now: datetime) -> None:
    """Raise Refused unless the request is a presigned URL S3 would honour now (path: as sent, still encoded)."""
    from urllib.parse import unquote

    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    try:
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise Refused("AuthorizationQueryParametersError", "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
        access_key, scope_date, region, service, terminal = params["X-Amz-Credential"].split("/")
        signed = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError):
        raise Refused("AuthorizationQueryParametersError", "Query-string authentication version 4 requires the "
                      "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                      "X-Amz-Expires parameters.") from None
    if not 0 < expires <= MAX_EXPIRES_SECONDS or (service, terminal) != ("s3", "aws4_request") or \
            scope_date != params["X-Amz-Date"][:8]:
        raise Refused("AuthorizationQueryParametersError", "X-Amz-Expires or X-Amz-Credential is malformed")
    secret = secret_for(access_key)
    if secret is None:
        raise Refused("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    lowered = {k.lower(): v for k, v in headers.items()}
    scope = f"{scope_date}/{region}/s3/aws4_request"
    wanted = expected_signature(secret, method, unquote(path), pairs, lowered, signed_headers, params["X-Amz-Date"],
                                scope)
    if not hmac.compare_digest(wanted, signature):
        raise Refused("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                      "you provided. Check your key and signing method.")
    if signed > now + MAX_CLOCK_SKEW:
        raise Refused("AccessDenied", "Request is not yet valid")
    if now > signed + timedelta(seconds=expires):
        raise Refused("AccessDenied", "Request has expired")


_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/"
                            r"(?P<service>[^/\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
                            r"Signature=(?P<signature>[0-9a-f]{64})\Z")


def check_header(method: str, path: str, query: str, headers: dict, body: bytes,
                 secret_for: Callable[[str], Optional[str]], now: datetime) -> str:
    """Raise Refused unless the request carries a SigV4 Authorization header AWS would honour: credentials secret_for
    knows, the signature of this method, path, query, signed headers and body, a date within 15 minutes of now.
    path: as sent (still encoded); headers: lowercased names. Returns the access key that signed it."""
    from urllib.parse import unquote

    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        raise Refused("AccessDenied", "Access Denied")
    secret = secret_for(match["key"])
    if secret is None:
        raise Refused("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    try:
        signed = datetime.strptime(headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise Refused("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    wanted = expected_signature(secret, method, unquote(path), parse_qsl(query, keep_blank_values=True), headers,
                                match["signed"].split(";"), headers["x-amz-date"], scope, payload)
    if not hmac.compare_digest(wanted, match["signature"]):
        raise Refused("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                      "you provided. Check your key and signing method.")
    if abs(now - signed) > MAX_CLOCK_SKEW:
        raise Refused("RequestTimeTooSkewed", "The difference between the request time and the current time is too "
                      "large.")
    return match["key"]


class IssuedCredentials:
    """The credentials local mode issued: its own for this run (random, never the made-up ones a client may have in
    its environment), and every session moto's STS issued in this process (the URL signer's)."""

    def __init__(self, access_key_id: str, secret_access_key: str):
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key

    def __call__(self, access_key: str) -> Optional[str]:
        if hmac.compare_digest(access_key.encode(), self.access_key_id.encode()):
            return self.secret_access_key
        return assumed_role_secret(access_key)


def assumed_role_secret(access_key: str) -> Optional[str]:
    """The secret of a session moto's STS issued in this process (the URL signer's), or None."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        for partition in ("aws", "aws-cn", "aws-us-gov"):
            try:
                role = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
            except KeyError:
                continue
            if role is not None:
                return role.secret_access_key
    return None


class PresignedUrlCheck:
    """WSGI middleware: S3's refusals for bad presigned URLs and anonymous requests, then the wrapped app."""

    def __init__(self, app, secret_for: Callable[[str], Optional[str]] = assumed_role_secret,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.app, self.secret_for, self.now = app, secret_for, now

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "")
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        # WSGI keeps these two out of HTTP_*: a signature may cover them.
        headers.update({name.replace("_", "-").lower(): environ[name] for name in ("CONTENT_TYPE", "CONTENT_LENGTH")
                        if environ.get(name)})
        path = environ.get("RAW_URI", "").split("?", 1)[0] or quote(environ.get("PATH_INFO", ""))
        try:
            if "X-Amz-Signature=" in query or "X-Amz-Credential=" in query:
                check(environ["REQUEST_METHOD"], path, query, headers, self.secret_for, self.now())
            elif "authorization" not in headers:
                raise Refused("AccessDenied", "Access Denied")
            else:
                body = b""
                if "x-amz-content-sha256" not in headers:  # signed over the body's hash (STS): read it, keep it
                    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                    environ["wsgi.input"] = io.BytesIO(body)
                check_header(environ["REQUEST_METHOD"], path, query, headers, body, self.secret_for, self.now())
        except Refused as refused:
            return self._refuse(start_response, refused)
        return self.app(environ, start_response)

    @staticmethod
    def _refuse(start_response, refused: Refused):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{refused.code}</Code>'
                f"<Message>{refused.message}</Message></Error>").encode()
        status = "400 Bad Request" if refused.status == 400 else "403 Forbidden"
        start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]
