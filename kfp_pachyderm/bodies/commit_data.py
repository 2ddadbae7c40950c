"""The ``commit_data`` component: commit a source and describe the commit."""

from __future__ import annotations

from dataclasses import dataclass

from kfp_pachyderm.codec.names import DEFAULT_BRANCH, DEFAULT_PROJECT
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.checks import check_repo, check_source
from kfp_pachyderm.kfp.contract import CommitOutput, Contract, parameter
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.refs import CommitRef, check_pfs_name


@dataclass(frozen=True, kw_only=True)
class CommitDataInputs(CommitOutput):
    """The parameters of the ``commit_data`` component."""

    source: str = parameter(
        "local path, http(s) URL, s3 URL, or commit reference", check=check_source
    )
    repo: str = parameter("destination repo", check=check_repo)
    branch: str = parameter("destination branch", DEFAULT_BRANCH)
    dest_path: str = parameter(
        "where the data lands; a single file lands exactly here unless `/`", "/"
    )
    description: str = parameter("recorded with the provenance", "")
    create_repo: bool = parameter(
        "create the repo if missing; otherwise a missing repo is an error", True
    )
    mirror: bool = parameter(
        "make `dest_path` hold exactly the source, removing other files there", False
    )
    project: str = parameter("Pachyderm project", DEFAULT_PROJECT)


def run(inputs: CommitDataInputs) -> str:
    """Commit ``inputs.source`` and describe the commit in ``inputs.commit``; return its ID."""
    check_pfs_name("branch", inputs.branch)
    target = CommitRef(inputs.repo, branch=inputs.branch, project=inputs.project)
    result = commit_data(
        connect(),
        inputs.source,
        target,
        inputs.dest_path,
        inputs.description,
        inputs.create_repo,
        inputs.record(),
        mirror=inputs.mirror,
    )
    describe_commit(
        inputs.commit,
        result.ref,
        files=result.files,
        bytes=result.bytes,
        content_digest=result.digest,
        reused=result.reused,
    )
    print(f"{'reused' if result.reused else 'committed'} {result.ref} ({result.files} files)")
    return result.ref.commit


CONTRACT = Contract(
    "commit_data",
    CommitDataInputs,
    run,
    """Commit ``source`` at ``dest_path`` on ``repo@branch``; return the commit ID.

    ``source`` is a local path, an http(s):// or s3:// URL, or a commit reference
    (repo@<commit id>[:/path]). Each file of the source is added or replaced under
    ``dest_path`` and nothing else is removed; with ``mirror``, ``dest_path`` holds exactly the
    source afterwards. If the branch head already holds this content at ``dest_path``, that
    commit is returned and nothing is written.
    """,
)
