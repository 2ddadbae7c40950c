"""The names of PFS both sides agree on: the default project and branch, the shape of a
project, repo or branch name and of a global commit ID, and the normal form of a file path.

The client checks what users write against these (:mod:`kfp_pachyderm.pfs.refs`); the local
server answers with pachd's own wording when a request breaks them.
"""

from __future__ import annotations

import re

from kfp_pachyderm.errors import InvalidReferenceError

DEFAULT_PROJECT = "default"
DEFAULT_BRANCH = "master"
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
COMMIT_ID_RE = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{19}$")
COMMIT_ID_RULE = (
    "a Pachyderm global ID is a uuid4 without dashes: 32 lowercase hex characters, the 13th "
    "being 4, such as 0123456789ab4def0123456789abcdef"
)


def normalize_path(path: str) -> str:
    """An absolute PFS path with no empty, '.' or trailing parts; '..' is refused."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidReferenceError(f"invalid path {path!r}: '..' is not allowed in PFS paths")
    return "/" + "/".join(parts)
