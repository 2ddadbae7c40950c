"""Pachyderm-native provenance for a step's output (kfp_pachyderm.pfs.native), on the real
local server through pachyderm_sdk: the output branch gets branch provenance on the input
branches, the step writes into the commit Pachyderm opened (so ``inspect commit`` lists the
input commits, all in one commit set), and where that cannot describe the output the step
falls back to the explicit record and says so."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm import CommitRef, inspect_commit
from kfp_pachyderm.pfs.commits import is_finished
from kfp_pachyderm.pfs.native import RECORD_KEY
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance
from kfp_pachyderm.steps.run import run_step

from .test_steps import contents, put, shout


def run(client: Client, step, inputs: dict[str, CommitRef], **overrides):
    definition = dataclasses.replace(step.definition, **overrides)
    return run_step(
        client, definition, inputs, {}, ProvenanceRecord(), log_line=lambda _: None, native=True
    )


def provenance_of(client: Client, ref: CommitRef) -> set[tuple[str, str]]:
    """What pachd itself says the commit came from: (repo, commit ID) of its direct
    provenance."""
    info = inspect_commit(client, ref)
    return {
        ((c.repo.name if c.repo and c.repo.name else c.branch.repo.name), c.id)
        for c in info.direct_provenance
    }


def branch_provenance(client: Client, repo: str) -> list[str]:
    info = client.pfs.inspect_branch(branch=CommitRef(repo, branch="master").pfs_branch())
    return [f"{b.repo.name}@{b.name}" for b in info.direct_provenance]


def note(client: Client, ref: CommitRef) -> str:
    return read_provenance(inspect_commit(client, ref)).extra[RECORD_KEY]


def test_the_output_lists_its_input_natively_and_later_commits_share_its_id(
    client: Client, tmp_path: Path
):
    first = put(client, tmp_path, "raw", {"a.txt": "a", "b.txt": "b"})
    result = run(client, shout, {"raw": first})
    assert provenance_of(client, result.ref) == {("raw", first.commit)}
    assert branch_provenance(client, "shouted") == ["raw@master"]
    assert note(client, result.ref).startswith("native: ")
    assert contents(client, result.ref, tmp_path) == {"a.txt": b"A!", "b.txt": b"B!"}

    second = put(client, tmp_path, "raw", {"a.txt": "a", "b.txt": "changed"})
    opened = inspect_commit(client, CommitRef("shouted", commit=second.commit))
    assert opened.origin.kind == pfs.OriginKind.AUTO and not is_finished(opened)
    again = run(client, shout, {"raw": second})
    assert again.ref.commit == second.commit, "the commit Pachyderm opened, in one commit set"
    assert again.ran == ("raw:/b.txt",) and again.carried == ("raw:/a.txt",)
    assert provenance_of(client, again.ref) == {("raw", second.commit)}
    assert contents(client, again.ref, tmp_path) == {"a.txt": b"A!", "b.txt": b"CHANGED!"}
    sets = {c.commit.repo.name for c in client.pfs.inspect_commit_set(
        commit_set=pfs.CommitSet(id=second.commit))}  # fmt: skip
    assert sets == {"raw", "shouted"}

    cached = run(client, shout, {"raw": second})
    assert cached.reused and cached.ref == again.ref
    assert branch_provenance(client, "shouted") == ["raw@master"], "a reuse changes nothing"


def test_two_levels_chain_in_one_commit_set(client: Client, tmp_path: Path):
    raw = put(client, tmp_path, "raw", {"a.txt": "a"})
    level1 = run(client, shout, {"raw": raw})
    level2 = run(client, shout, {"raw": level1.ref}, output_repo="twice")
    assert provenance_of(client, level2.ref) == {("shouted", level1.ref.commit)}
    assert branch_provenance(client, "twice") == ["shouted@master"]

    newer = put(client, tmp_path, "raw", {"a.txt": "b"})
    opened = inspect_commit(client, CommitRef("twice", commit=newer.commit))
    assert not is_finished(opened), "Pachyderm opened the whole chain for the new commit"
    level1 = run(client, shout, {"raw": newer})
    level2 = run(client, shout, {"raw": level1.ref}, output_repo="twice")
    assert level1.ref.commit == level2.ref.commit == newer.commit
    assert provenance_of(client, level2.ref) == {("shouted", newer.commit)}
    assert contents(client, level2.ref, tmp_path) == {"a.txt": b"B!!"}


def test_an_input_that_is_not_its_branch_head_falls_back_to_the_record(
    client: Client, tmp_path: Path
):
    old = put(client, tmp_path, "raw", {"a.txt": "old"})
    run(client, shout, {"raw": old})
    new = put(client, tmp_path, "raw", {"a.txt": "new"})
    result = run(client, shout, {"raw": old}, output_branch="replay")
    message = note(client, result.ref)
    assert message.startswith("explicit record only: ")
    assert f"{old.commit} is not the head of raw@master" in message
    assert f"its head is {new.commit}" in message
    record = read_provenance(inspect_commit(client, result.ref))
    assert record.inputs == [str(old)], "the record names the input it read"
    assert provenance_of(client, result.ref) == set()
    assert contents(client, result.ref, tmp_path) == {"a.txt": b"OLD!"}

    run(client, shout, {"raw": new})
    assert branch_provenance(client, "shouted") == ["raw@master"]
    replay = run(client, shout, {"raw": old})
    assert note(client, replay.ref).startswith("explicit record only: ")
    assert branch_provenance(client, "shouted") == [], (
        "pachd starts no commit on a branch with provenance, so the fallback drops it"
    )
    assert contents(client, replay.ref, tmp_path) == {"a.txt": b"OLD!"}
    newest = put(client, tmp_path, "raw", {"a.txt": "newest"})
    back = run(client, shout, {"raw": newest})
    assert note(client, back.ref).startswith("native: ")
    assert provenance_of(client, back.ref) == {("raw", newest.commit)}


def test_commits_no_step_ran_on_are_finished_as_superseded(client: Client, tmp_path: Path):
    run(client, shout, {"raw": put(client, tmp_path, "raw", {"a.txt": "1"})})
    skipped = put(client, tmp_path, "raw", {"a.txt": "2"})
    latest = put(client, tmp_path, "raw", {"a.txt": "3"})
    result = run(client, shout, {"raw": latest})
    assert result.ref.commit == latest.commit
    stale = inspect_commit(client, CommitRef("shouted", commit=skipped.commit))
    assert is_finished(stale) and "superseded" in stale.error
    assert contents(client, result.ref, tmp_path) == {"a.txt": b"3!"}


def test_turning_it_off_finishes_what_provenance_opened_and_drops_it(
    client: Client, tmp_path: Path
):
    run(client, shout, {"raw": put(client, tmp_path, "raw", {"a.txt": "1"})})
    unread = put(client, tmp_path, "raw", {"a.txt": "2"})
    plain = run_step(
        client, shout.definition, {"raw": unread}, {}, ProvenanceRecord(), lambda _: None
    )
    assert plain.ref.commit != unread.commit
    left = inspect_commit(client, CommitRef("shouted", commit=unread.commit))
    assert is_finished(left) and "superseded" in left.error
    assert branch_provenance(client, "shouted") == []
    assert RECORD_KEY not in read_provenance(inspect_commit(client, plain.ref)).extra
    assert contents(client, plain.ref, tmp_path) == {"a.txt": b"2!"}
