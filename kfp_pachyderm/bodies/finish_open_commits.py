"""The ``finish_open_commits`` exit handler: leave no commit of a failed run open."""

from __future__ import annotations

from dataclasses import dataclass

from kfp_pachyderm.kfp.contract import ComponentInputs, Contract, optional, parameter
from kfp_pachyderm.pfs.commits import finish_abandoned
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.provenance import kfp_ids
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True, kw_only=True)
class FinishOpenCommitsInputs(ComponentInputs):
    """The parameters of the ``finish_open_commits`` component."""

    branches: str = parameter("comma-separated `repo@branch` list (the pipeline's outputs)")
    kfp_run_id: str | None = optional(
        "the run whose open commits to finish; not set: the run this step belongs to"
    )


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


CONTRACT = Contract(
    "finish_open_commits",
    FinishOpenCommitsInputs,
    run,
    """For each ``repo@branch`` in the comma-separated ``branches``, finish the head commit if
    it is still open and was opened by this KFP run (``kfp_run_id``, by default the run this
    step belongs to), recording that the run ended before the
    step could (a pod killed by OOM or a lost node runs no cleanup of its own). Return how many
    commits were finished.
    """,
    returns=int,
)
