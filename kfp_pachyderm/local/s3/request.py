"""An S3 request as the gateway reads it: method, path, query and headers, decoded once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from kfp_pachyderm.local.s3.errors import S3Error

MAX_KEYS = 1000
"""The most keys, parts or objects one request lists or names, as in S3."""
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
"""GetObject's query parameters that set a response header, and the header each sets."""
DECIMAL_RE = re.compile(r"[0-9]{1,19}")  # 19 digits hold any 63-bit size
MAX_CONTENT_LENGTH = (1 << 63) - 1


@dataclass
class Request:
    """The parts of an HTTP request the gateway reads, decoded once."""

    method: str
    raw_path: str
    query_pairs: list[tuple[str, str]]
    query: dict[str, str]
    headers: Message

    def header(self, name: str) -> str | None:
        values = self.headers.get_all(name)
        return None if values is None else ",".join(" ".join(v.split()) for v in values)


def int_param(query: dict[str, str], name: str, default: int | None, low: int, high: int) -> int:
    """Query parameter ``name`` as an integer from ``low`` to ``high``; ``default`` when it is
    absent (None: it is required)."""
    value = query.get(name)
    if value is None and default is not None:
        return default
    if value is None or not value.isdigit() or not low <= int(value) <= high:
        raise S3Error(
            "InvalidArgument", f"{name} {value!r} is invalid: expected an integer {low} to {high}"
        )
    return int(value)


def content_length(headers: Message) -> int | None:
    """The request's ``Content-Length``, or None when it has none.

    A malformed one (not a decimal number, or several that differ) is 400 InvalidArgument,
    whatever the request: s2's ``bodyReadingMiddleware`` (``s2.go``, pachd's S3 library) answers
    InvalidArgument to a Content-Length it cannot parse, and Go's net/http answers a bare 400
    before that to one that is not a number at all. S3 answers 400 too.
    """
    values = {value.strip(" \t") for value in headers.get_all("Content-Length") or []}
    if not values:
        return None
    value = values.pop()
    if values or not DECIMAL_RE.fullmatch(value) or int(value) > MAX_CONTENT_LENGTH:
        shown = ", ".join(repr(v) for v in sorted({value, *values}))
        raise S3Error(
            "InvalidArgument",
            f"Content-Length {shown} is invalid: expected one decimal number of bytes",
        )
    return int(value)
