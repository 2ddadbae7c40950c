"""An audit of the local server against behaviours pachd 2.12's own server tests state:
commit sets (DropCommitSet, SquashCommitSet, provenance across sets).

How the audit works (the Go test each test follows, xfail for a difference): see
``tests/pachd_audit_helpers.py``.
"""

from __future__ import annotations

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from .pachd_audit_helpers import (
    at,
    branch,
    commit_files,
    fails,
    head,
    ids,
    ids_of,
    put,
    read,
    repo,
)


def test_drop_commit_set_resets_head_to_parent(client: Client):
    """TestDropCommitSet: squashing a commit set with no children fails; dropping an open
    head commit set removes it, the branch's head is its parent again and the branch
    stays."""
    client.pfs.create_project(project=pfs.Project(name="prj"))
    client.pfs.create_repo(repo=repo("test", "prj"))
    with client.pfs.commit(branch=branch("test", project="prj")) as first:
        first.put_file_from_bytes("foo", b"foo\n")
    second = client.pfs.start_commit(branch=branch("test", project="prj"))
    fails(lambda: client.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=second.id)))
    client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=second.id))
    fails(lambda: client.pfs.inspect_commit(commit=second))
    b = branch("test", project="prj")
    assert client.pfs.inspect_commit(commit=pfs.Commit(branch=b)).commit.id == first.id
    assert len(list(client.pfs.list_branch(repo=repo("test", "prj")))) == 1


def test_drop_only_commit_in_branch_leaves_an_empty_head(client: Client):
    """TestDropCommitSetOnlyCommitInBranch, TestDropCommitSetFinished: dropping the set of a
    branch's only commit keeps the branch, with a new empty head commit, and the repo's
    size is back to 0."""
    client.pfs.create_repo(repo=repo("test"))
    only = commit_files(client, "test", {"foo": b"foo\n"})
    client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=only.id))
    (info,) = client.pfs.list_branch(repo=repo("test"))
    commits = list(client.pfs.list_commit(repo=repo("test"), to=head("test")))
    assert ids(commits) == [info.head.id] and info.head.id != only.id
    assert client.pfs.inspect_commit(commit=head("test")).details.size_bytes == 0
    assert client.pfs.inspect_repo(repo=repo("test")).details.size_bytes == 0


def test_drop_only_commit_keeps_the_branch(client: Client):
    """TestDropCommitSetOnlyCommitInBranch: dropping the set of a branch's only commit does
    not delete the branch, and the dropped commit is gone."""
    client.pfs.create_repo(repo=repo("test"))
    only = client.pfs.start_commit(branch=branch("test"))
    put(client, only, "foo", b"foo\n")
    client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=only.id))
    assert [b.branch.name for b in client.pfs.list_branch(repo=repo("test"))] == ["master"]
    assert not client.pfs.commit_exists(only)


def test_squash_commit_set_with_open_child_fails_then_succeeds(client: Client):
    """TestSquashCommitEmptyChild: squashing a commit set whose child is still open fails
    ("cannot squash until child commit ... is finished"); once the child is finished the
    squash succeeds and the child still holds the squashed commit's file."""
    client.pfs.create_repo(repo=repo("repo"))
    a = commit_files(client, "repo", {"foo": b"foo"})
    b = client.pfs.start_commit(branch=branch("repo"))
    err = fails(lambda: client.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=a.id)))
    assert "cannot squash until child commit" in err.details()
    client.pfs.finish_commit(commit=b)
    client.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=a.id))
    assert read(client, b, "foo") == b"foo"
    assert not client.pfs.commit_exists(at("repo", a.id))


def test_commit_set_includes_provenance_from_other_sets(client: Client):
    """TestWaitCommitSet3: with C's provenance A and B, waiting on A's commit set returns A's
    and C's commits and the B commit C used, C last; waiting on B's latest returns B's and
    C's commits and A's, C last."""
    for name in ("A", "B", "C"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("C"), provenance=[branch("A"), branch("B")])
    client.pfs.finish_commit(commit=head("C"))

    def commit_to(name: str) -> pfs.Commit:
        commit = client.pfs.start_commit(branch=branch(name))
        client.pfs.finish_commit(commit=commit)
        client.pfs.finish_commit(commit=head("C"))
        return commit

    a = commit_to("A")
    commit_to("B")
    b = commit_to("B")
    for commit in (a, b):
        infos = client.pfs.wait_commit_set(pfs.CommitSet(id=commit.id))
        assert sorted(i.commit.repo.name for i in infos) == ["A", "B", "C"]
        assert (infos[-1].commit.repo.name, infos[-1].commit.id) == ("C", commit.id)


def test_commit_set_after_provenance_update(client: Client):
    """TestUpdateBranch: for A -> B -> C, after B's provenance becomes A and D, the commit set
    of C's new head holds four commits: B's and C's, and the A and D commits B now uses."""
    for name in ("A", "B", "C", "D"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A")])
    client.pfs.finish_commit(commit=head("B"))
    client.pfs.create_branch(branch=branch("C"), provenance=[branch("B")])
    client.pfs.finish_commit(commit=head("C"))
    client.pfs.start_commit(branch=branch("A"))
    for name in ("A", "B", "C"):
        client.pfs.finish_commit(commit=head(name))
    commit_files(client, "D", {})
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A"), branch("D")])
    client.pfs.finish_commit(commit=head("B"))
    client.pfs.finish_commit(commit=head("C"))
    c = client.pfs.inspect_commit(commit=head("C")).commit
    infos = list(client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=c.id)))
    assert sorted(i.commit.repo.name for i in infos) == ["A", "B", "C", "D"]


def test_squash_relinks_several_children(client: Client):
    """TestSquashCommitSetMultipleChildrenSingleCommit: b (parent a) has children c on master
    and d on a branch made at b; squashing b makes a the parent of c and d and lists both as
    a's children."""
    client.pfs.create_repo(repo=repo("repo"))
    client.pfs.create_branch(branch=branch("repo"))
    a = commit_files(client, "repo", {})
    b = commit_files(client, "repo", {})
    client.pfs.create_branch(
        branch=branch("repo", "master2"), head=head("repo"), new_commit_set=True
    )
    d = commit_files(client, "repo", {}, name="master2")
    c = commit_files(client, "repo", {})

    def info(commit: pfs.Commit) -> pfs.CommitInfo:
        return client.pfs.inspect_commit(commit=at("repo", commit.id))

    assert info(a).parent_commit is not None and ids_of(info(a).child_commits) == [b.id]
    assert info(b).parent_commit.id == a.id
    assert sorted(ids_of(info(b).child_commits)) == sorted([c.id, d.id])
    client.pfs.squash_commit_set(commit_set=pfs.CommitSet(id=b.id))
    assert sorted(ids_of(info(a).child_commits)) == sorted([c.id, d.id])
    for child in (c, d):
        assert info(child).parent_commit.id == a.id and not info(child).child_commits


def test_branch_on_a_commit_keeps_its_commit_set(client: Client):
    """TestBranch1: appends through the branch head add up, with master the only branch;
    creating branches master2 and master3 at the first commit leaves its commit set at one
    commit; ListBranch lists master3, master2, master."""
    client.pfs.create_repo(repo=repo("test"))
    first = client.pfs.start_commit(branch=branch("test"))
    put(client, head("test"), "foo", b"foo\n", append=True)
    client.pfs.finish_commit(commit=head("test"))
    assert read(client, head("test"), "foo") == b"foo\n"
    client.pfs.start_commit(branch=branch("test"))
    put(client, head("test"), "foo", b"foo\n", append=True)
    client.pfs.finish_commit(commit=head("test"))
    assert read(client, head("test"), "foo") == b"foo\nfoo\n"
    assert [b.branch.name for b in client.pfs.list_branch(repo=repo("test"))] == ["master"]
    for name in ("master2", "master3"):
        client.pfs.create_branch(branch=branch("test", name), head=at("test", first.id))
        commit_set = pfs.CommitSet(id=first.id)
        assert len(list(client.pfs.inspect_commit_set(commit_set=commit_set))) == 1
    names = [b.branch.name for b in client.pfs.list_branch(repo=repo("test"))]
    assert names == ["master3", "master2", "master"]
