"""Multipart bodies: form uploads, OCAPI batch requests, OData $batch with
`application/http` parts.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from connectors.http import PlatformError


@dataclass
class Part:
    """One part of a multipart body; header names are lower-case when decoded."""

    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def new_boundary(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def encode_multipart(parts: Sequence[Part], boundary: str) -> bytes:
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in part.headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + part.body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    raise PlatformError(f"réponse multipart sans boundary ({content_type})")


def parse_headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def decode_multipart(body: bytes, content_type: str) -> list[Part]:
    delimiter = b"--" + boundary_of(content_type).encode()
    parts = []
    for segment in body.split(delimiter)[1:]:
        if segment.startswith(b"--"):
            break
        segment = segment.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = segment.partition(b"\r\n\r\n")
        parts.append(Part(parse_headers(head), content))
    return parts


def http_request_message(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    """An HTTP request as the body of an `application/http` part (OData $batch)."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_http_response(message: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an HTTP response carried in an `application/http` part."""
    head, _, body = message.partition(b"\r\n\r\n")
    status_line, _, header_block = head.partition(b"\r\n")
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise PlatformError(f"réponse de lot illisible : {status_line[:80]!r}")
    return int(fields[1]), parse_headers(header_block), body


def multipart_form(
    fields: dict[str, str], file_field: str, filename: str, file: bytes, file_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body with text fields and one file; answers the body and
    its Content-Type (PlatformHttp takes raw content)."""
    boundary = new_boundary("pim")
    parts = [
        Part({"Content-Disposition": f'form-data; name="{name}"'}, value.encode())
        for name, value in fields.items()
    ]
    disposition = f'form-data; name="{file_field}"; filename="{filename}"'
    parts.append(Part({"Content-Disposition": disposition, "Content-Type": file_type}, file))
    return encode_multipart(parts, boundary), f"multipart/form-data; boundary={boundary}"
