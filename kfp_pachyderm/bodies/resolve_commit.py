"""The ``resolve_commit`` component's body: optionally commit data, then pin the branch head."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import ComponentInputs
from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.pfs.commits import resolve_input
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, kfp_ids
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True)
class ResolveCommitInputs(ComponentInputs):
    """The parameters of the ``resolve_commit`` component."""

    ref: str
    commit: dsl.Artifact
    commit_source: str
    kfp_run_id: str
    kfp_task_id: str


def run(inputs: ResolveCommitInputs) -> str:
    """Commit ``commit_source`` to the branch when given, then pin ``ref``; return the ID."""
    target = CommitRef.parse(inputs.ref)
    if target.commit and inputs.commit_source:
        raise UsageError(
            f"commit_source needs a branch to commit to, but {inputs.ref!r} names a commit"
        )
    client = connect()
    if inputs.commit_source:
        run_id, task_id = kfp_ids(inputs.kfp_run_id, inputs.kfp_task_id)
        record = ProvenanceRecord(kfp_run_id=run_id, kfp_task_id=task_id)
        commit_data(client, inputs.commit_source, target, target.path or "/", "", True, record)
    pinned = resolve_input(
        client, target if target.commit else target.on(target.branch or DEFAULT_BRANCH)
    )
    describe_commit(inputs.commit, pinned)
    print(f"{inputs.ref} is {pinned}")
    return pinned.commit
