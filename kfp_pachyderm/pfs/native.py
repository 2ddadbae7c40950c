"""Pachyderm-native provenance for a step's output, when a pipeline asks for it.

Pachyderm records provenance itself when the output branch has *branch provenance* on the
input branches: a commit to an input branch opens a commit on the output branch (origin AUTO,
provenance the input commits), and ``pachctl inspect commit <output>`` lists the inputs, as
Pachyderm's own pipelines do. pachd refuses to start any other commit on such a branch
(``ErrCommitOnOutputBranch``), so a step writes into the commit Pachyderm opened.

:func:`prepare_native_output` decides, before a step writes:

* every input commit is the head of its branch: the output branch gets those branches as its
  provenance (pachd then opens a commit whose provenance is exactly these inputs, or has
  already opened it), and the step writes into that open commit;
* otherwise (an input pinned to an older commit, an input on no branch, a step reading its
  own output branch, or the commit for these inputs already finished): native provenance
  cannot describe this output. The output branch is left without branch provenance, the step
  starts its own commit, and the library's explicit provenance record (always written) is the
  record; the returned note says why, for that record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.pfs.commits import (
    ensure_branch,
    ensure_repo,
    finish_unwritten,
    inspect_commit,
    is_finished,
    output_branch_without_provenance,
)
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors

RECORD_KEY = "native_provenance"


@dataclass(frozen=True)
class NativeOutput:
    """Where a step writes: ``commit``, the open commit Pachyderm opened for the inputs (None
    when the step starts its own), and ``note``, what the provenance record says about it."""

    commit: str | None
    note: str


def _key(commit: pfs.Commit) -> tuple[str, str, str]:
    """(project, repo, commit ID) of a commit message, whichever of its fields names the repo."""
    repo = commit.repo if commit.repo is not None and commit.repo.name else commit.branch.repo
    return repo.project.name or "default", repo.name, commit.id


def _headed_branch(client: Client, ref: CommitRef) -> CommitRef | str:
    """The branch whose head is the commit ``ref`` pins (its own branch when it names one,
    else any branch of its repo, master first), or why there is none."""
    if ref.branch:
        on = ref.branch_ref().with_path(None)
        head = inspect_commit(client, on).commit.id
        if head == ref.commit:
            return on
        return f"input {ref.with_path(None)} is not the head of {on} (its head is {head})"
    with rpc_errors(f"listing the branches of {ref.repo}"):
        infos = list(client.pfs.list_branch(repo=ref.pfs_repo()))
    heads = sorted(
        (b.branch.name != DEFAULT_BRANCH, b.branch.name) for b in infos if b.head.id == ref.commit
    )
    if not heads:
        return f"input {ref.with_path(None)} is the head of no branch of {ref.repo}"
    return CommitRef(ref.repo, branch=heads[0][1], project=ref.project)


def _input_branches(client: Client, inputs: Sequence[CommitRef]) -> list[CommitRef] | str:
    """The branch each input commit heads, or why an input heads none."""
    branches = []
    for ref in inputs:
        on = _headed_branch(client, ref)
        if isinstance(on, str):
            return on
        if on not in branches:
            branches.append(on)
    return branches


def _without_provenance(client: Client, target: CommitRef, why: str) -> NativeOutput:
    output_branch_without_provenance(client, target)
    return NativeOutput(None, f"explicit record only: {why}")


def prepare_native_output(
    client: Client, target: CommitRef, inputs: Sequence[CommitRef]
) -> NativeOutput:
    """Give ``target``'s branch branch provenance on the branches ``inputs`` head, and return
    the open commit Pachyderm opened for exactly these inputs; or, when that cannot describe
    this output, leave the branch without provenance and say why (see the module docstring).
    ``inputs`` are pinned commits; ``target`` names the output repo and branch."""
    target = target.branch_ref().with_path(None)
    ensure_repo(client, target)
    branches = _input_branches(client, inputs)
    if isinstance(branches, str):
        return _without_provenance(client, target, branches)
    if any(b.repo == target.repo and b.project == target.project for b in branches):
        return _without_provenance(client, target, f"it reads its own output repo {target.repo}")
    info = ensure_branch(client, target, branches, finish_new_head=False)
    head = inspect_commit(client, target.at(info.head.id))
    wanted = {_key(ref.pfs_commit()) for ref in inputs}
    opened_for = {_key(c) for c in head.direct_provenance}
    if is_finished(head) or not wanted <= opened_for:
        return _without_provenance(
            client,
            target,
            f"the commit Pachyderm opened on {target} ({head.commit.id}) is "
            + ("already finished" if is_finished(head) else "for other input commits"),
        )
    if head.parent_commit is not None and head.parent_commit.id:
        finish_unwritten(client, target.at(head.parent_commit.id), f"before {head.commit.id}")
    names = ", ".join(str(b) for b in branches)
    return NativeOutput(head.commit.id, f"native: {target} has branch provenance on {names}")
