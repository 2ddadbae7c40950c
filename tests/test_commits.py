"""Repos, branches and output commits: always finished, provenance native and recorded."""

from __future__ import annotations

import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import KfpPachydermError, NotFoundError
from kfp_pachyderm.pfs.commits import (
    ensure_branch,
    ensure_repo,
    inspect_commit,
    inspect_commit_set,
    output_commit,
    resolve,
)
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance
from kfp_pachyderm.pfs.refs import CommitRef


def test_ensure_repo_creates_or_refuses(client: Client):
    ref = CommitRef.parse("images@master")
    with pytest.raises(NotFoundError, match="repo default/images does not exist"):
        ensure_repo(client, ref, create=False)
    assert not client.pfs.repo_exists(ref.pfs_repo())
    ensure_repo(client, ref)
    ensure_repo(client, ref)
    assert client.pfs.repo_exists(ref.pfs_repo())


def test_output_goes_into_the_same_global_id_commit_with_native_provenance(client: Client):
    data, model = CommitRef.parse("data@master"), CommitRef.parse("model@master")
    ensure_repo(client, data)
    ensure_repo(client, model)
    ensure_branch(client, data)
    ensure_branch(client, model, provenance=[data])
    ensure_branch(client, model, provenance=[data])  # idempotent: no new commit
    with output_commit(client, data) as inp:
        client.pfs.put_file_from_bytes(commit=inp.pfs_commit(), path="/x", data=b"1")
    record = ProvenanceRecord(
        inputs=[str(inp.ref)], step="train", kfp_run_id="run-1", parameters={"lr": "0.1"}
    )
    with output_commit(client, model, same_id_as=inp.commit, provenance=record) as out:
        client.pfs.put_file_from_bytes(commit=out.pfs_commit(), path="/m", data=b"w")
    assert out.native and out.commit == inp.commit
    info = inspect_commit(client, out.ref, wait=True)
    assert [(c.repo.name, c.id) for c in info.direct_provenance] == [("data", inp.commit)]
    assert read_provenance(info) == record
    assert "step train" in info.description and "run-1" in info.description
    assert {i.commit.repo.name for i in inspect_commit_set(client, inp.commit, wait=True)} == {
        "data",
        "model",
    }
    with (
        pytest.raises(KfpPachydermError, match="is already finished"),
        output_commit(client, model, same_id_as=inp.commit),
    ):
        pass


def test_failed_step_finishes_its_commit_with_the_error(client: Client):
    ref = CommitRef.parse("out@master")
    ensure_repo(client, ref)
    with pytest.raises(RuntimeError, match="boom"), output_commit(client, ref) as out:
        raise RuntimeError("boom")
    info = inspect_commit(client, out.ref)
    assert info.error == "RuntimeError: boom"
    assert info.finished.year > 1970
    # the branch is not blocked: the next step can commit
    with output_commit(client, ref) as nxt:
        pass
    assert inspect_commit(client, nxt.ref).parent_commit.id == out.commit


def test_output_commits_inherit_their_parents_files_unless_started_empty(client: Client):
    ref = CommitRef.parse("out@master")
    ensure_repo(client, ref)
    with output_commit(client, ref) as first:
        client.pfs.put_file_from_bytes(commit=first.pfs_commit(), path="/old", data=b"1")
    with output_commit(client, ref) as second:
        client.pfs.put_file_from_bytes(commit=second.pfs_commit(), path="/new", data=b"2")
    assert client.pfs.path_exists(pfs.File(commit=second.pfs_commit(), path="/old"))
    with output_commit(client, ref, start_empty=True) as third:
        client.pfs.put_file_from_bytes(commit=third.pfs_commit(), path="/new", data=b"3")
    assert not client.pfs.path_exists(pfs.File(commit=third.pfs_commit(), path="/old"))
    assert client.pfs.path_exists(pfs.File(commit=third.pfs_commit(), path="/new"))


def test_resolve_pins_a_branch_once(client: Client):
    ref = CommitRef.parse("data@master")
    ensure_repo(client, ref)
    with output_commit(client, ref) as out:
        pass
    assert resolve(client, ref) == ref.at(out.commit)
    with pytest.raises(NotFoundError, match="branch dev not found in repo default/data"):
        resolve(client, ref.on("dev"))
