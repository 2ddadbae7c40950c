"""S3's XML documents: building response bodies and reading request bodies, plus the
timestamp and ETag forms they carry."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.store.records import CommitRow

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


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


def commit_time(commit: CommitRow) -> float:
    return commit.finished or commit.started


def quoted_etag(digest: str) -> str:
    return f'"{digest}"'
