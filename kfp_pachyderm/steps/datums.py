"""Datums, with Pachyderm's meaning: an input's ``glob`` splits its commit into the entries it
matches (``/`` the whole commit, ``/*`` each top-level file or directory, deeper patterns as
pachd matches them), and a step with several inputs runs on every combination (their cross
product). A datum's hash is the hash pachd reports for each matched entry, so a datum whose
content did not change keeps its hash across commits.

The index of a finished output commit maps each datum to its hash and the files it wrote; the
next run reads it to carry over the outputs of unchanged datums.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors
from kfp_pachyderm.pfs.transfer import BytesChannel

INDEX_KEY = "kfp_pachyderm.datums"
_GLOB_RE = re.compile(r"^/[^\x00-\x1f\x7f]*$")


@dataclass(frozen=True)
class Entry:
    """One matched entry of one input: its path in the commit, whether it is a file, its hash."""

    input: str
    path: str
    is_file: bool
    hash: str


@dataclass(frozen=True)
class Datum:
    """One combination of matched entries, one per input."""

    entries: tuple[Entry, ...]

    @property
    def id(self) -> str:
        """Stable across commits: the inputs and paths, not the content."""
        return " ".join(f"{e.input}:{e.path}" for e in self.entries)

    @property
    def hash(self) -> str:
        """Changes exactly when the content of one of its entries changes."""
        text = "\n".join(f"{e.input}:{e.path}:{e.hash}" for e in self.entries)
        return hashlib.sha256(text.encode()).hexdigest()


def check_glob(name: str, pattern: str) -> str:
    """``pattern`` if it can be a glob (an absolute path pattern), else a one-line error."""
    if not isinstance(pattern, str) or not _GLOB_RE.match(pattern):
        raise UsageError(
            f"invalid glob {pattern!r} for input {name!r}: a pattern starting with '/', such as "
            "'/' (the whole commit as one datum), '/*' (each top-level entry) or '/*/*'"
        )
    if pattern.count("[") != pattern.count("]"):
        raise UsageError(f"invalid glob {pattern!r} for input {name!r}: unbalanced '['")
    return pattern


def matched_entries(client: Client, name: str, ref: CommitRef, pattern: str) -> list[Entry]:
    """The entries of the pinned commit ``ref`` that ``pattern`` matches, in path order."""
    if pattern.rstrip("/") == "":
        return [Entry(name, "/", False, _commit_hash(client, ref))]
    with rpc_errors(f"matching glob {pattern} in {ref}"), BytesChannel(client, True) as channel:
        entries = [
            Entry(name, info.file.path, info.file_type == pfs.FileType.FILE, info.hash.hex())
            for info in channel.glob_file(ref.with_path(None).pfs_commit(), pattern)
            if info.file.path != "/"
        ]
    return sorted(entries, key=lambda e: e.path)


def _commit_hash(client: Client, ref: CommitRef) -> str:
    """A hash of the whole commit's content, from each file's path and hash."""
    digest = hashlib.sha256()
    with rpc_errors(f"listing {ref}"):
        for info in client.pfs.walk_file(file=ref.with_path("/").pfs_file()):
            if info.file_type == pfs.FileType.FILE:
                digest.update(f"{info.file.path}\0{info.hash.hex()}\n".encode())
    return digest.hexdigest()


def datums_of(per_input: list[list[Entry]]) -> list[Datum]:
    """Every combination of one entry per input (empty when any input matched nothing)."""
    return [Datum(tuple(combo)) for combo in itertools.product(*per_input)]


@dataclass(frozen=True)
class DatumOutputs:
    """What one datum wrote: its hash then, and the output files' paths; whether it ran for
    the commit this index is on (False: carried over from an earlier one; None: an index
    written before this was recorded) and how long its function took, in seconds."""

    hash: str
    files: tuple[str, ...]
    ran: bool | None = True
    seconds: float | None = None


def encode_index(index: dict[str, DatumOutputs]) -> str:
    """The index as commit metadata (JSON)."""
    return json.dumps(
        {
            key: {"hash": v.hash, "files": list(v.files), "ran": v.ran, "seconds": v.seconds}
            for key, v in sorted(index.items())
        },
        separators=(",", ":"),
    )


def decode_index(text: str | None) -> dict[str, DatumOutputs] | None:
    """The index from commit metadata; None when absent or unreadable."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        return {
            key: DatumOutputs(v["hash"], tuple(v["files"]), v.get("ran"), v.get("seconds"))
            for key, v in raw.items()
        }
    except (ValueError, KeyError, TypeError):
        return None
