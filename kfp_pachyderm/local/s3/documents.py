"""S3's XML documents: building response bodies and reading request bodies, plus the
timestamp and ETag forms they carry."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from xml.etree import ElementTree

from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.s3.xml_text import escape_text
from kfp_pachyderm.local.store.records import CommitRow

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWNER_ID = "0" * 32
"""The ID of the one S3 user pachd's gateway names as the owner of everything (``defaultUser``,
``src/server/pfs/s3/s3.go``), with the display name ``pachyderm``."""


def el(tag: str, value: object) -> str:
    """``<tag>value</tag>``, the value escaped as Go's encoding/xml escapes it (as pachd's
    gateway writes its documents), so any key, control characters included, stays readable."""
    return f"<{tag}>{escape_text(str(value))}</{tag}>"


def owner(tag: str = "Owner") -> str:
    """An ``<Owner>`` (or ``tag``) element naming pachd's one user, as its gateway writes it in
    ListBuckets, object listings and multipart listings."""
    return f"<{tag}>{el('ID', OWNER_ID)}{el('DisplayName', 'pachyderm')}</{tag}>"


def xml_document(root: str, *parts: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{XMLNS}">{"".join(parts)}</{root}>'
    ).encode()


def parse_xml(data: bytes, root: str) -> ElementTree.Element:
    try:
        element = ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise S3Error(
            "MalformedXML", f"the {root} document is not well-formed XML: {err}"
        ) from None
    if _tag(element) != root:
        raise S3Error("MalformedXML", f"expected a <{root}> document, not <{_tag(element)}>")
    return element


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]


def xml_children(element: ElementTree.Element, tag: str) -> list[ElementTree.Element]:
    return [child for child in element if _tag(child) == tag]


def xml_text(element: ElementTree.Element, tag: str) -> str | None:
    found = xml_children(element, tag)
    return (found[0].text or "") if found else None


def iso_time(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def http_time(value: str | None) -> datetime | None:
    """An HTTP date (RFC 1123, RFC 850 or asctime, the forms Go's ``http.ParseTime`` takes) as
    an aware datetime, UTC when it names no zone; None when absent or unparsable, which the
    conditional headers of Go's net/http and of s2 take as no condition."""
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def commit_time(commit: CommitRow) -> float:
    return commit.finished or commit.started


def quoted_etag(digest: str) -> str:
    return f'"{digest}"'
