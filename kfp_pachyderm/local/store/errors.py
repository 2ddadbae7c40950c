"""The errors the store raises, and the checks on names and paths that raise them.

Each error carries the gRPC status name pachd would answer with, so the gRPC API passes it on
as is and the S3 gateway maps it to an S3 error code.
"""

from __future__ import annotations

from kfp_pachyderm.errors import InvalidReferenceError
from kfp_pachyderm.pfs.refs import NAME_RE, normalize_path


class StoreError(Exception):
    """A request the store refuses; ``code`` is the gRPC status name pachd would use."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> StoreError:
    return StoreError("NOT_FOUND", message)


def invalid(message: str) -> StoreError:
    return StoreError("INVALID_ARGUMENT", message)


def precondition(message: str) -> StoreError:
    return StoreError("FAILED_PRECONDITION", message)


def already_finished(commit: object) -> StoreError:
    """The error for a write to, or second finish of, a finished commit (pachd's wording)."""
    return precondition(f"commit {commit} has already finished")


def check_name_as_pachd(kind: str, name: str) -> None:
    """Apply pachd's naming rule to a project, repo or branch name, answering as pachd does
    (INVALID_ARGUMENT with its wording), unlike the client's :func:`check_pfs_name`."""
    if not name or not NAME_RE.match(name):
        raise invalid(
            f"{kind} name {name!r} is invalid: only alphanumeric characters, underscores, "
            "and dashes are allowed"
        )


def clean_path(path: str) -> str:
    """Normalise a PFS path the way pachd does: absolute, no duplicate or trailing slashes."""
    try:
        return normalize_path(path or "")
    except InvalidReferenceError as err:
        raise invalid(str(err)) from err
