"""The ``commit_data`` step: put a source into a finished commit of a data repo.

The source is a local file or directory, an http(s) URL, an s3:// URL, or another commit
(copied inside Pachyderm, no bytes through the step). Everything is validated before the
commit is opened; the upload is one stream; a failure finishes the commit with the error and
writes nothing at the destination. The step is idempotent: when the branch head already holds
exactly this content at this path (same content digest, or the same source commit), it returns
that commit instead of making a new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.pfs.commits import ensure_repo, finished_head, inspect_commit, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance, record_provenance
from kfp_pachyderm.pfs.refs import CommitRef, normalize_path
from kfp_pachyderm.pfs.rpc import rpc_errors
from kfp_pachyderm.pfs.sources import is_commit_reference, open_source, resolve_commit_source
from kfp_pachyderm.pfs.transfer import TreeStats, put_files, tree_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitDataResult:
    """The commit holding the data, what it holds, and whether an existing commit was reused."""

    ref: CommitRef
    files: int
    bytes: int
    digest: str
    reused: bool


def _matches(record: ProvenanceRecord, dest: str, key: str, value: str) -> bool:
    return (
        record.step == "commit_data"
        and record.parameters.get("dest_path") == dest
        and (record.extra.get(key) == value)
    )


def commit_data(
    client: Client,
    source: str,
    target: CommitRef,
    dest_path: str = "/",
    description: str = "",
    create_repo: bool = True,
    record: ProvenanceRecord | None = None,
) -> CommitDataResult:
    """Commit ``source`` at ``dest_path`` on ``target``'s branch; see the module docstring."""
    dest = normalize_path(dest_path)
    target = target.branch_ref()
    record = record or ProvenanceRecord()
    record.step = "commit_data"
    record.parameters = {**record.parameters, "dest_path": dest, "source": source}
    if description:
        record.extra = {**record.extra, "description": description}

    if is_commit_reference(source):
        src = resolve_commit_source(client, source)
        ensure_repo(client, target, create=create_repo)
        head = finished_head(client, target)
        if head and _matches(head[1], dest, "source_commit", str(src)):
            return _reused(client, head[0], dest)
        record.inputs = [str(src)]
        record.extra = {**record.extra, "source_commit": str(src)}
        with output_commit(client, target, provenance=record, clean=False) as out:
            requests = [
                pfs.ModifyFileRequest(set_commit=out.pfs_commit()),
                pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=dest)),
                pfs.ModifyFileRequest(copy_file=pfs.CopyFile(dst=dest, src=src.pfs_file())),
            ]
            with rpc_errors(f"copying {src} to {out.ref}:{dest}"):
                client.pfs.modify_file(iter(requests))
        return _result(client, out.ref, dest, reused=False)

    opened = open_source(source)
    ensure_repo(client, target, create=create_repo)
    head = finished_head(client, target)
    precomputed: TreeStats | None = None
    if opened.kind == "local":
        precomputed = tree_digest(opened.files)
        if head and _matches(head[1], dest, "content_digest", precomputed.digest):
            return _reused(client, head[0], dest)
        record.extra = {**record.extra, "content_digest": precomputed.digest}
    record.inputs = [opened.description]
    with output_commit(client, target, provenance=record, clean=False) as out:
        stats = put_files(client, out.pfs_commit(), opened.files, dest, opened.single_file)
        if precomputed is None:
            record.extra = {**record.extra, "content_digest": stats.digest}
            record_provenance(client, out.ref, record)
    if head and precomputed is None and _matches(head[1], dest, "content_digest", stats.digest):
        try:
            with rpc_errors(f"dropping the duplicate commit {out.ref}"):
                client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=out.ref.commit))
            return _reused(client, head[0], dest)
        except KfpPachydermError as err:
            log.warning("%s duplicates %s but could not be dropped: %s", out.ref, head[0], err)
    log.info(
        "committed %s files, %s bytes from %s as %s", stats.files, stats.bytes, source, out.ref
    )
    return CommitDataResult(out.ref.with_path(dest), stats.files, stats.bytes, stats.digest, False)


def _result(client: Client, ref: CommitRef, dest: str, reused: bool) -> CommitDataResult:
    files = list(client.pfs.walk_file(file=ref.with_path(dest).pfs_file()))
    regular = [f for f in files if f.file_type == pfs.FileType.FILE]
    info = inspect_commit(client, ref)
    record = read_provenance(info) or ProvenanceRecord()
    digest = record.extra.get("content_digest", "")
    return CommitDataResult(
        ref.with_path(dest), len(regular), sum(f.size_bytes for f in regular), digest, reused
    )


def _reused(client: Client, ref: CommitRef, dest: str) -> CommitDataResult:
    log.info("%s already holds this content at %s; reusing it", ref, dest)
    return _result(client, ref, dest, reused=True)
