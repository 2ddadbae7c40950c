"""The errors the store raises, and the checks on names that raise them.

Each error carries the gRPC status name pachd would answer with, so the gRPC API passes it on
as is and the S3 gateway maps it to an S3 error code.
"""

from __future__ import annotations

from kfp_pachyderm.codec.names import COMMIT_ID_RE, NAME_RE


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


def refuse_commit_id_as_branch(name: str, context: str) -> None:
    """Refuse a new or moved branch whose name is a commit ID (a UUID v4 without dashes), as
    pachd's ``pfsdb.UpsertBranch`` does, since ``repo@<id>`` would read as that commit. pachd's
    error has no status code (gRPC UNKNOWN) and the wrapping of the RPC that got there:
    ``context``."""
    if COMMIT_ID_RE.match(name):
        raise StoreError("UNKNOWN", f"{context}: update head: branch name cannot be a UUID V4")
