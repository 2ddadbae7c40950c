"""XML character data written as Go's encoding/xml writes it, which pachd's gateway marshals its
documents with: a character XML 1.0 cannot hold (a NUL or another control character, a lone
surrogate, U+FFFE, U+FFFF) becomes U+FFFD, so the document stays well-formed whatever a key
holds, and tab, newline and carriage return become character references, so they survive it.
"""

from __future__ import annotations

import re

_REFERENCES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&#34;",
    "'": "&#39;",
    "\t": "&#x9;",
    "\n": "&#xA;",
    "\r": "&#xD;",
}
_ESCAPED = re.compile("[&<>\"'\t\n\r]|[^\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape_text(text: str) -> str:
    """``text`` as XML character data, escaped as Go's ``xml.EscapeText`` does it: markup and
    whitespace characters as references, characters XML cannot hold as U+FFFD."""
    return _ESCAPED.sub(lambda match: _REFERENCES.get(match.group(), "\ufffd"), text)
