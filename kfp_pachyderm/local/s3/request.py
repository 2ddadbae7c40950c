"""An S3 request as the gateway reads it: method, path, query and headers, decoded once."""

from __future__ import annotations

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
