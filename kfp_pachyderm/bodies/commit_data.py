"""The ``commit_data`` component's body: commit a source and describe the commit."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import ComponentInputs, step_record
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.refs import CommitRef, check_pfs_name


@dataclass(frozen=True)
class CommitDataInputs(ComponentInputs):
    """The parameters of the ``commit_data`` component."""

    source: str
    repo: str
    commit: dsl.Artifact
    branch: str
    dest_path: str
    description: str
    create_repo: bool
    mirror: bool
    project: str
    kfp_run_id: str
    kfp_task_id: str


def run(inputs: CommitDataInputs) -> str:
    """Commit ``inputs.source`` and describe the commit in ``inputs.commit``; return its ID."""
    check_pfs_name("repo", inputs.repo)
    check_pfs_name("branch", inputs.branch)
    target = CommitRef(inputs.repo, branch=inputs.branch, project=inputs.project)
    record = step_record(inputs.kfp_run_id, inputs.kfp_task_id)
    result = commit_data(
        connect(),
        inputs.source,
        target,
        inputs.dest_path,
        inputs.description,
        inputs.create_repo,
        record,
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
