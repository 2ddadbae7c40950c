"""The ``finish_open_commits`` exit handler's body."""

from __future__ import annotations

from dataclasses import dataclass

from kfp_pachyderm.bodies.common import ComponentInputs
from kfp_pachyderm.pfs.commits import finish_abandoned
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.provenance import kfp_ids
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True)
class FinishOpenCommitsInputs(ComponentInputs):
    """The parameters of the ``finish_open_commits`` component."""

    branches: str
    kfp_run_id: str


def run(inputs: FinishOpenCommitsInputs) -> int:
    """Finish every listed branch's head that this run left open; return how many."""
    kfp_run_id, _ = kfp_ids(inputs.kfp_run_id)
    client = connect()
    finished = 0
    for text in filter(None, (b.strip() for b in inputs.branches.split(","))):
        if finish_abandoned(client, CommitRef.parse(text), kfp_run_id):
            finished += 1
    print(f"finished {finished} commit(s) left open by run {kfp_run_id}")
    return finished
