"""The ``resolve_commit`` component: optionally commit data, then pin the branch head."""

from __future__ import annotations

from dataclasses import dataclass

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.checks import check_commit_reference, check_source
from kfp_pachyderm.kfp.contract import CommitOutput, Contract, optional, parameter
from kfp_pachyderm.pfs.commits import resolve_input
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True, kw_only=True)
class ResolveCommitInputs(CommitOutput):
    """The parameters of the ``resolve_commit`` component. ``ref`` is a branch to pin (or a
    commit to pass through), not a commit input: it has no artifact form."""

    ref: str = parameter(
        "the branch, `repo@branch`; a commit reference `repo@<commit id>` is checked and passed "
        "through",
        check=check_commit_reference,
    )
    commit_source: str | None = optional(
        "a path, URL or commit reference to commit to the branch first",
        check=check_source,
    )


def run(inputs: ResolveCommitInputs) -> str:
    """Commit ``commit_source`` to the branch when given, then pin ``ref``; return the ID."""
    target = CommitRef.parse(inputs.ref)
    if target.commit and inputs.commit_source:
        raise UsageError(
            f"commit_source needs a branch to commit to, but {inputs.ref!r} names a commit"
        )
    client = connect()
    if inputs.commit_source:
        path = target.path or "/"
        commit_data(client, inputs.commit_source, target, path, "", True, inputs.record())
    pinned = resolve_input(
        client, target if target.commit else target.on(target.branch or DEFAULT_BRANCH)
    )
    describe_commit(inputs.commit, pinned)
    print(f"{inputs.ref} is {pinned}")
    return pinned.commit


CONTRACT = Contract(
    "resolve_commit",
    ResolveCommitInputs,
    run,
    """Return the commit ID ``ref`` (``repo@branch``) points at now, as a string and a commit
    artifact; a ``ref`` that already names a commit is checked and passed through (that is how
    ``kfp-pachyderm watch`` starts runs on exact commits).

    Run it uncached (``set_caching_options(False)``) as a pipeline's first step: every later
    step then receives a commit ID, so KFP caching is correct by construction. With
    ``commit_source`` (a path, URL or commit reference) the data is committed to the branch
    first, as commit_data does (idempotently).
    """,
)
