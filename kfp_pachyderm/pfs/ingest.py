"""The ``commit_data`` step: put a source into a finished commit of a data repo.

The source is a local file or directory, an http(s) URL, an s3:// URL, or another commit
(copied inside Pachyderm, no bytes through the step). Everything is validated before the
commit is opened; the upload is one stream; a failure finishes the commit with the error and
writes nothing at the destination. Files are added or replaced and nothing else is removed,
unless ``mirror`` asks for the destination to hold exactly the source. The step is idempotent:
when the branch head already holds this content at this path (same content digest, or the same
source commit; for ``mirror``, a head that was itself a mirror commit), it returns that commit
instead of making a new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.codec.names import normalize_path
from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.pfs.commits import ensure_repo, finished_head, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, record_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors
from kfp_pachyderm.pfs.sources import is_commit_reference, open_source, resolve_commit_source
from kfp_pachyderm.pfs.transfer import TreeStats, put_files, tree_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitDataResult:
    """The commit holding the data, with ``dest_path`` as its path; the files, bytes and content
    digest of the source as committed there (the digest is empty for a commit source); and
    whether an existing commit was reused."""

    ref: CommitRef
    files: int
    bytes: int
    digest: str
    reused: bool


def _already_holds(record: ProvenanceRecord, dest: str, key: str, value: str, mirror: bool) -> bool:
    """Whether the head that ``record`` describes already holds what this request would commit,
    so that it is reused: the one rule for commit_data's reuse. The head must be a commit_data of
    the same content (``key``: ``content_digest`` or ``source_commit``, equal to ``value``) at
    the same ``dest``. Any such head holds that content at ``dest``, so adding or replacing it
    again changes nothing; a ``mirror`` request also needs ``dest`` to hold nothing else, which
    only a head that was itself a mirror commit guarantees."""
    return (
        record.step == "commit_data"
        and record.parameters.get("dest_path") == dest
        and record.extra.get(key) == value
        and (not mirror or record.parameters.get("mirror") == str(True))
    )


def commit_data(
    client: Client,
    source: str,
    target: CommitRef,
    dest_path: str = "/",
    description: str = "",
    create_repo: bool = True,
    record: ProvenanceRecord | None = None,
    mirror: bool = False,
) -> CommitDataResult:
    """Commit ``source`` at ``dest_path`` on ``target``'s branch; see the module docstring.

    As with ``pachctl put file -r``, each file of the source is added or replaced under
    ``dest_path`` and the branch's other files are kept: committing a folder with one changed
    file into a repo of many changes that one file. With ``mirror``, ``dest_path`` holds
    exactly the source afterwards (files that are not in the source are removed there).
    """
    dest = normalize_path(dest_path)
    target = target.branch_ref()
    record = record or ProvenanceRecord()
    record.step = "commit_data"
    record.parameters = {
        **record.parameters,
        "dest_path": dest,
        "source": source,
        "mirror": str(mirror),
    }
    if description:
        record.extra = {**record.extra, "description": description}

    if is_commit_reference(source):
        src = resolve_commit_source(client, source)
        ensure_repo(client, target, create=create_repo)
        head = finished_head(client, target)
        if head and _already_holds(head[1], dest, "source_commit", str(src), mirror):
            return _reused(head[0], dest, _source_stats(client, src))
        record.inputs = [str(src)]
        record.extra = {**record.extra, "source_commit": str(src)}
        with output_commit(client, target, provenance=record) as out:
            requests = [pfs.ModifyFileRequest(set_commit=out.pfs_commit())]
            if mirror:
                requests.append(pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=dest)))
            # without append, CopyFile replaces each copied file and leaves others in place
            requests.append(
                pfs.ModifyFileRequest(copy_file=pfs.CopyFile(dst=dest, src=src.pfs_file()))
            )
            with rpc_errors(f"copying {src} to {out.ref}:{dest}"):
                client.pfs.modify_file(iter(requests))
        stats = _source_stats(client, src)
        return CommitDataResult(out.ref.with_path(dest), stats.files, stats.bytes, "", False)

    opened = open_source(source)
    ensure_repo(client, target, create=create_repo)
    head = finished_head(client, target)
    precomputed: TreeStats | None = None
    if opened.kind == "local":
        precomputed = tree_digest(opened.files)
        if head and _already_holds(head[1], dest, "content_digest", precomputed.digest, mirror):
            return _reused(head[0], dest, precomputed)
        record.extra = {**record.extra, "content_digest": precomputed.digest}
    record.inputs = [opened.description]
    with output_commit(client, target, provenance=record) as out:
        stats = put_files(
            client, out.pfs_commit(), opened.files, dest, opened.single_file, mirror=mirror
        )
        if precomputed is None:
            record.extra = {**record.extra, "content_digest": stats.digest}
            record_provenance(client, out.ref, record)
    if (
        head
        and precomputed is None
        and _already_holds(head[1], dest, "content_digest", stats.digest, mirror)
    ):
        try:
            with rpc_errors(f"dropping the duplicate commit {out.ref}"):
                client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=out.ref.commit))
            return _reused(head[0], dest, stats)
        except KfpPachydermError as err:
            log.warning("%s duplicates %s but could not be dropped: %s", out.ref, head[0], err)
    log.info(
        "committed %s files, %s bytes from %s as %s", stats.files, stats.bytes, source, out.ref
    )
    return CommitDataResult(out.ref.with_path(dest), stats.files, stats.bytes, stats.digest, False)


def _source_stats(client: Client, src: CommitRef) -> TreeStats:
    """The files and bytes at the commit source ``src`` (its content digest is not computed)."""
    with rpc_errors(f"listing {src}"):
        regular = [
            f for f in client.pfs.walk_file(file=src.pfs_file()) if f.file_type == pfs.FileType.FILE
        ]
    return TreeStats(len(regular), sum(f.size_bytes for f in regular), "")


def _reused(ref: CommitRef, dest: str, stats: TreeStats) -> CommitDataResult:
    log.info("%s already holds this content at %s; reusing it", ref, dest)
    return CommitDataResult(ref.with_path(dest), stats.files, stats.bytes, stats.digest, True)
