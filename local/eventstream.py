"""AWS event stream messages (application/vnd.amazon.eventstream), written: what the SageMaker runtime sends for
InvokeEndpointWithResponseStream, so the local endpoint (and the tests' fake one) answers the unchanged boto3 client,
whose parser (botocore.eventstream) reads them back.

One message: a 12-byte prelude (total length, headers length, both big-endian uint32, then the CRC32 of those 8
bytes), the headers (name length uint8, name, value type 7 = string, value length uint16, value), the payload, and
the CRC32 of everything before it (the format as botocore.eventstream parses it). The runtime's events
(SageMaker API Reference, ResponseStream): `PayloadPart` events whose payload is the bytes themselves, and the
exceptions `ModelStreamError` (Message, ErrorCode) and `InternalStreamFailure` (Message) as JSON.
"""

from __future__ import annotations

import json
import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: str, value: str) -> bytes:
    name_bytes, value_bytes = name.encode(), value.encode()
    return struct.pack(">B", len(name_bytes)) + name_bytes + struct.pack(">BH", _STRING, len(value_bytes)) + \
        value_bytes


def payload_part(data: bytes) -> bytes:
    return message({":message-type": "event", ":event-type": "PayloadPart",
                    ":content-type": "application/octet-stream"}, data)


def model_stream_error(text: str, code: str = "ModelInvocationTimeExceeded") -> bytes:
    return message({":message-type": "exception", ":exception-type": "ModelStreamError",
                    ":content-type": "application/json"}, json.dumps({"Message": text, "ErrorCode": code}).encode())


def internal_stream_failure(text: str) -> bytes:
    return message({":message-type": "exception", ":exception-type": "InternalStreamFailure",
                    ":content-type": "application/json"}, json.dumps({"Message": text}).encode())
