"""An audit of the local server against behaviours pachd 2.12's own server tests state:
branches (CreateBranch, ListBranch, DeleteBranch, branch provenance).

How the audit works (the Go test each test follows, xfail for a difference): see
``tests/pachd_audit_helpers.py``.
"""

from __future__ import annotations

import uuid

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from .pachd_audit_helpers import (
    at,
    branch,
    commit_files,
    fails,
    head,
    put,
    read,
    repo,
)


def test_branch_list_newest_first_and_delete(client: Client):
    """TestBranch2: branches created on one commit all read its file; ListBranch is newest
    first; a new commit on one of them has the shared commit as parent; after deleting the
    newest, the other two remain with their heads."""
    client.pfs.create_project(project=pfs.Project(name="prj"))
    client.pfs.create_repo(repo=repo("test", "prj"))
    with client.pfs.commit(branch=branch("test", "branch1", "prj")) as c:
        c.put_file_from_bytes("foo", b"bar")
    names = ["branch1", "branch2", "branch3"]
    for name in names:
        client.pfs.create_branch(branch=branch("test", name, "prj"), head=c)
    infos = list(client.pfs.list_branch(repo=repo("test", "prj")))
    assert [i.branch.name for i in infos] == names[::-1]
    for info in infos:
        assert info.branch.repo.project.name == "prj"
        assert read(client, info.head, "foo") == b"bar"
    with client.pfs.commit(branch=branch("test", "branch1", "prj")) as c2:
        pass
    assert client.pfs.inspect_commit(commit=c2).parent_commit.id == infos[-1].head.id
    client.pfs.delete_branch(branch=branch("test", "branch3", "prj"))
    infos = list(client.pfs.list_branch(repo=repo("test", "prj")))
    assert [(i.branch.name, i.head.id) for i in infos] == [("branch2", c.id), ("branch1", c2.id)]


def test_create_branch_twice_moves_it(client: Client):
    """TestCreateBranchTwice: CreateBranch on an existing branch moves its head to the given
    commit; ListBranch is newest first and the other branch is unchanged."""
    client.pfs.create_repo(repo=repo("test"))
    c1 = commit_files(client, "test", {}, name="foo")
    client.pfs.create_branch(branch=branch("test"), head=c1)
    c2 = commit_files(client, "test", {}, name="foo")
    client.pfs.create_branch(branch=branch("test"), head=c2)
    infos = list(client.pfs.list_branch(repo=repo("test")))
    assert [(i.branch.name, i.head.id) for i in infos] == [("master", c2.id), ("foo", c2.id)]


def test_delete_nonexistent_branch(client: Client):
    """TestDeleteNonexistentBranch: deleting a missing branch fails with "not found"."""
    client.pfs.create_repo(repo=repo("test"))
    err = fails(lambda: client.pfs.delete_branch(branch=branch("test", "doesnt_exist")))
    assert "not found" in err.details()


def test_branch_create_in_nonexistent_repo(client: Client):
    """TestBranchCreateInNonExistentRepo: creating a branch in a missing repo fails as not
    found."""
    err = fails(lambda: client.pfs.create_branch(branch=branch("test")))
    assert "not found" in err.details()


def test_delete_branch_with_provenance(client: Client):
    """TestDeleteBranchWithProvenance: a branch that is another branch's provenance cannot
    be deleted without ``force``."""
    for name in ("A", "B"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A")])
    fails(lambda: client.pfs.delete_branch(branch=branch("A")))
    client.pfs.delete_branch(branch=branch("A"), force=True)
    assert not client.pfs.branch_exists(branch("A"))


def test_create_branch_head_on_other_repo(client: Client):
    """TestCreateBranchHeadOnOtherRepo: a branch whose head is a commit of another repo is
    refused: "branch and head commit must belong to the same repo"."""
    for name in ("test", "other"):
        client.pfs.create_repo(repo=repo(name))
        client.pfs.start_commit(branch=branch(name))
    put(client, head("test"), "/foo", b"foo\n")
    put(client, head("other"), "/bar", b"bar\n")
    err = fails(lambda: client.pfs.create_branch(branch=branch("test", "test"), head=head("other")))
    assert "branch and head commit must belong to the same repo" in err.details()


def test_start_commit_on_a_commit_id_branch_name(client: Client):
    """TestCreateInvalidBranchName: StartCommit on a branch named like a commit ID fails."""
    client.pfs.create_repo(repo=repo("test"))
    fails(lambda: client.pfs.start_commit(branch=branch("test", uuid.uuid4().hex)))
    assert list(client.pfs.list_branch(repo=repo("test"))) == []


def test_commit_opens_one_on_each_output_branch(client: Client):
    """TestCommitBranch, TestPropagateBranch: a commit to input opens a commit with its ID on
    each of two output branches; the output repo lists two commits."""
    for name in ("input", "output1", "output2"):
        client.pfs.create_repo(repo=repo(name))
    for name in ("output1", "output2"):
        client.pfs.create_branch(branch=branch(name), provenance=[branch("input")])
    c = commit_files(client, "input", {})
    for name in ("output1", "output2"):
        assert client.pfs.inspect_commit(commit=head(name)).commit.id == c.id
    assert len(list(client.pfs.list_commit(repo=repo("output1")))) == 2


def test_recreate_branch_provenance(client: Client):
    """TestRecreateBranchProvenance: after deleting the output branch and finishing its open
    commit, recreating it with that commit as head and the same provenance adds a commit;
    the old one is second in ListCommit."""
    for name in ("in", "out"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("out"), provenance=[branch("in")])
    client.pfs.finish_commit(commit=head("out"))
    put(client, head("in"), "foo", b"foo")
    infos = list(client.pfs.list_commit(repo=repo("out")))
    assert len(infos) == 2
    first = infos[0].commit
    client.pfs.delete_branch(branch=branch("out"))
    client.pfs.finish_commit(commit=at("out", first.id))
    assert len(list(client.pfs.list_commit(repo=repo("out")))) == 2
    client.pfs.create_branch(
        branch=branch("out"), head=at("out", first.id), provenance=[branch("in")]
    )
    infos = list(client.pfs.list_commit(repo=repo("out")))
    assert len(infos) == 3 and infos[1].commit.id == first.id
