"""The text cleaning that the model is trained on and that its server applies to raw issues.

The served model must clean text inside its TensorFlow graph exactly as :func:`clean` does in
Python, so the cleaning is a list of regular-expression rewrites written in the subset that
Python's ``re`` and TensorFlow's RE2 read alike: no lookarounds or back-references, no ``\\w``
or ``\\s`` (which mean different things in the two), ASCII only. Non-ASCII characters are
dropped first, so lower-casing means the same in both.
"""

from __future__ import annotations

import re

NON_ASCII = (r"[^\x00-\x7f]+", " ")
"""Applied before lower-casing."""

REWRITES = (
    (r"(https?://|www\.)[^\x00-\x20<>]+", " url "),
    (r"<[^<>]*>", " "),
    (r"[^a-z0-9.,!?' -]", " "),
    (r"([.,!?])[.,!?]*", r" \1 "),
    (r"(^| )['-]+", " "),
    (r"['-]+( |$)", " "),
    (r"^ +| +$", ""),
    (r"  +", " "),
)
"""Applied in order after lower-casing: URLs become ``url``, HTML tags and anything but letters,
digits and ``.,!?'-`` become spaces, a run of punctuation becomes one token, quotes and dashes
around words go, and spaces are collapsed."""

_NON_ASCII = re.compile(NON_ASCII[0])
_REWRITES = tuple((re.compile(pattern), replacement) for pattern, replacement in REWRITES)


def clean(text: str) -> str:
    """``text`` lower-cased with URLs replaced by ``url``, markup and symbols removed and
    punctuation split off, as space-separated tokens; the form vocabularies are fitted on and
    the model reads. Deterministic."""
    text = _NON_ASCII.sub(NON_ASCII[1], text).lower()
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text
