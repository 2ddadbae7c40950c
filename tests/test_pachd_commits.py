"""An audit of the local server against behaviours pachd 2.12's own server tests state:
commits (StartCommit, InspectCommit, ListCommit, SubscribeCommit, WaitCommitSet, ancestry).

How the audit works (the Go test each test follows, xfail for a difference): see
``tests/pachd_audit_helpers.py``.
"""

from __future__ import annotations

import threading
import time
import uuid

import betterproto
import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from .pachd_audit_helpers import (
    at,
    branch,
    commit_files,
    fails,
    head,
    ids,
    ls,
    put,
    read,
    repo,
)


def test_inspect_commit_open_then_finished(client: Client):
    """TestInspectCommit: an open commit has no ``finished`` time; once finished (waited on)
    it has one, and ``details.size_bytes`` is the data's size."""
    client.pfs.create_repo(repo=repo("test"))
    before = time.time()
    commit = client.pfs.start_commit(branch=branch("test"))
    put(client, commit, "foo", b"foo\n")
    info = client.pfs.inspect_commit(commit=commit)
    assert info.commit.id == commit.id
    assert info.finished is None or info.finished.timestamp() <= 0
    assert info.started.timestamp() >= before - 1
    client.pfs.finish_commit(commit=commit)
    info = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    assert info.finished.timestamp() >= info.started.timestamp()
    assert info.details.size_bytes == 4


def test_open_commit_has_empty_details(client: Client):
    """TestInspectCommit: InspectCommit of an open commit returns empty details."""
    client.pfs.create_repo(repo=repo("test"))
    commit = client.pfs.start_commit(branch=branch("test"))
    put(client, commit, "foo", b"foo\n")
    assert client.pfs.inspect_commit(commit=commit).details.size_bytes == 0


def test_inspect_commit_wait_blocks_until_finished(client: Client):
    """TestInspectCommitWait: InspectCommit waiting for FINISHED returns once another client
    finishes the commit, with ``finished`` set."""
    client.pfs.create_repo(repo=repo("test"))
    commit = client.pfs.start_commit(branch=branch("test"))
    timer = threading.Timer(0.5, lambda: client.pfs.finish_commit(commit=commit))
    timer.start()
    info = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    timer.join()
    assert info.finished.timestamp() > 0


def test_start_commit_with_unfinished_parent(client: Client):
    """TestStartCommitWithUnfinishedParent: starting a commit on a branch whose head is open
    fails; once the head is finished it succeeds."""
    client.pfs.create_repo(repo=repo("test"))
    first = client.pfs.start_commit(branch=branch("test"))
    fails(lambda: client.pfs.start_commit(branch=branch("test")))
    client.pfs.finish_commit(commit=first)
    second = client.pfs.start_commit(branch=branch("test"))
    assert client.pfs.inspect_commit(commit=second).parent_commit.id == first.id


def test_start_commit_latest_on_branch(client: Client):
    """TestStartCommitLatestOnBranch: a branch's head is its newest commit."""
    client.pfs.create_repo(repo=repo("test"))
    made = [commit_files(client, "test", {}) for _ in range(3)]
    assert client.pfs.inspect_commit(commit=head("test")).commit.id == made[-1].id


def test_list_commit_order_and_range(client: Client):
    """TestListCommit: ListCommit is newest first (each commit's parent is the next one);
    ``to``/``from`` lists the commits after ``from`` (exclusive) up to ``to``; ``reverse`` is
    oldest first."""
    client.pfs.create_repo(repo=repo("test"))
    made = [commit_files(client, "test", {}).id for _ in range(10)]
    infos = list(client.pfs.list_commit(repo=repo("test")))
    assert ids(infos) == made[::-1]
    assert all(a.parent_commit.id == b.commit.id for a, b in zip(infos, infos[1:], strict=False))
    assert ids(client.pfs.list_commit(repo=repo("test"), to=head("test"))) == made[::-1]
    ranged = client.pfs.list_commit(repo=repo("test"), to=head("test"), from_=at("test", made[5]))
    assert ids(ranged) == made[6:][::-1]
    assert ids(client.pfs.list_commit(repo=repo("test"), reverse=True)) == made


def test_list_commit_limit(client: Client):
    """TestListCommitLimit: ListCommit with ``number`` returns that many commits, newest."""
    client.pfs.create_repo(repo=repo("test"))
    made = [commit_files(client, "test", {}).id for _ in range(5)]
    assert ids(client.pfs.list_commit(repo=repo("test"), number=1)) == [made[-1]]


def test_subscribe_commit_only_sees_its_branch(client: Client):
    """TestSubscribeCommit: SubscribeCommit on ``master`` delivers master's new commits in
    order and none of another branch's."""
    client.pfs.create_repo(repo=repo("test"))
    for _ in range(3):
        commit_files(client, "test", {}, name="master-v1")
    made: list[str] = []

    def commit_later() -> None:
        for _ in range(3):
            made.append(commit_files(client, "test", {}).id)

    stream = client.pfs.subscribe_commit(
        repo=repo("test"), branch="master", state=pfs.CommitState.STARTED
    )
    t = threading.Thread(target=commit_later)
    t.start()
    got = [next(stream).commit.id for _ in range(3)]
    t.join()
    stream.close()
    assert got == made


def test_wait_commit_set_with_no_downstream_repos(client: Client):
    """TestWaitCommitSetWithNoDownstreamRepos: waiting on a lone finished commit's set
    returns just that commit."""
    client.pfs.create_repo(repo=repo("test"))
    c = commit_files(client, "test", {})
    assert ids(client.pfs.wait_commit_set(pfs.CommitSet(id=c.id))) == [c.id]


def test_wait_commit_set_chain_in_order(client: Client):
    """TestWaitCommitSet2: for A -> B -> C -> D, waiting on A's commit set returns the four
    commits, upstream first, once the downstream ones are finished."""
    names = ["A", "B", "C", "D"]
    for name in names:
        client.pfs.create_repo(repo=repo(name))
    for up, down in zip(names, names[1:], strict=False):
        client.pfs.create_branch(branch=branch(down), provenance=[branch(up)])
        client.pfs.finish_commit(commit=head(down))
    a = commit_files(client, "A", {})

    def finish_downstream() -> None:
        for name in names[1:]:
            client.pfs.finish_commit(commit=at(name, a.id))

    t = threading.Thread(target=finish_downstream)
    t.start()
    infos = client.pfs.wait_commit_set(pfs.CommitSet(id=a.id))
    t.join()
    assert [(i.commit.repo.name, i.commit.id) for i in infos] == [(n, a.id) for n in names]


def test_wait_open_commit(client: Client):
    """TestWaitOpenCommit: waiting on an open commit's set blocks until it and its
    downstream commit are finished, then returns both."""
    for name in ("A", "B"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A")])
    client.pfs.finish_commit(commit=head("B"))
    commit = client.pfs.start_commit(branch=branch("A"))

    def finish_later() -> None:
        time.sleep(0.5)
        client.pfs.finish_commit(commit=head("A"))
        client.pfs.finish_commit(commit=head("B"))

    t = threading.Thread(target=finish_later)
    t.start()
    infos = client.pfs.wait_commit_set(pfs.CommitSet(id=commit.id))
    t.join()
    assert [(i.commit.repo.name, i.commit.id) for i in infos] == [
        ("A", commit.id),
        ("B", commit.id),
    ]
    assert all(i.finished.timestamp() > 0 for i in infos)


def test_wait_uninvolved_branch(client: Client):
    """TestWaitUninvolvedBranch: waiting on a commit ID in a repo the commit set does not
    touch fails rather than blocking."""
    for name in ("A", "B"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"))
    commit = client.pfs.start_commit(branch=branch("A"))
    fails(
        lambda: client.pfs.inspect_commit(
            commit=pfs.Commit(repo=repo("B"), branch=branch("B"), id=commit.id),
            wait=pfs.CommitState.FINISHED,
        )
    )


def test_wait_nonexistent_branch(client: Client):
    """TestWaitNonExistentBranch: waiting on the head of a missing branch fails."""
    client.pfs.create_repo(repo=repo("A"))
    client.pfs.start_commit(branch=branch("A"))
    err = fails(
        lambda: client.pfs.inspect_commit(commit=head("A", "foo"), wait=pfs.CommitState.FINISHED)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_empty_and_nonexistent_commit_set_wait(client: Client):
    """TestEmptyWait, TestWaitNonExistentCommitSet: waiting on an empty commit set ID fails,
    and on an unknown one fails as not found."""
    fails(lambda: client.pfs.wait_commit_set(pfs.CommitSet(id="")))
    err = fails(lambda: client.pfs.wait_commit_set(pfs.CommitSet(id=uuid.uuid4().hex)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_errored_commit_is_readable_and_skipped_by_its_child(client: Client):
    """TestErroredCommits: a commit finished with an error keeps its content readable, but
    the next commit on the branch builds on the last good commit, not on the errored one."""
    client.pfs.create_repo(repo=repo("test"))
    client.pfs.create_branch(branch=branch("test", "b"))
    put(client, head("test", "b"), "f1", b"foo\n")
    errored = client.pfs.start_commit(branch=branch("test", "b"))
    put(client, errored, "f2", b"foo\n")
    client.pfs.finish_commit(commit=errored, error="error")
    assert client.pfs.inspect_commit(commit=errored).error == "error"
    put(client, head("test", "b"), "f3", b"foo\n")
    assert ls(client, errored) == ["/f1", "/f2"]
    assert ls(client, head("test", "b")) == ["/f1", "/f3"]


def test_errored_commit_keeps_its_content(client: Client):
    """TestErroredCommits: a commit finished with an error records the error and its
    content stays readable."""
    client.pfs.create_repo(repo=repo("test"))
    put(client, head("test"), "f1", b"foo\n")
    errored = client.pfs.start_commit(branch=branch("test"))
    put(client, errored, "f2", b"foo\n")
    client.pfs.finish_commit(commit=errored, error="error")
    assert client.pfs.inspect_commit(commit=errored).error == "error"
    assert ls(client, errored) == ["/f1", "/f2"]


def test_ancestry_caret_syntax_names_the_parents(client: Client):
    """TestAncestrySyntax: the commit ``master^`` and ``master^2`` name the head's parent and
    grandparent."""
    client.pfs.create_repo(repo=repo("test"))
    made = [commit_files(client, "test", {f"/f{i}": b"x"}).id for i in range(3)]
    for ref, expected in (("master^", made[1]), ("master^2", made[0])):
        assert client.pfs.inspect_commit(commit=at("test", ref)).commit.id == expected, ref


def test_child_commits_links(client: Client):
    """TestChildCommits: a commit lists the commits started on it as children (on its branch
    and on another branch forked from it); dropping a child's commit set removes it from
    the list."""
    client.pfs.create_repo(repo=repo("A"))
    client.pfs.create_branch(branch=branch("A"))
    first = commit_files(client, "A", {})
    second = client.pfs.start_commit(branch=branch("A"))
    assert client.pfs.inspect_commit(commit=second).parent_commit.id == first.id
    children = client.pfs.inspect_commit(commit=first).child_commits
    assert [c.id for c in children] == [second.id]
    client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=second.id))
    assert not client.pfs.inspect_commit(commit=first).child_commits
    second = commit_files(client, "A", {})
    third = client.pfs.start_commit(branch=branch("A", "foo"), parent=at("A", first.id))
    children = client.pfs.inspect_commit(commit=first).child_commits
    assert sorted(c.id for c in children) == sorted([second.id, third.id])
    client.pfs.drop_commit_set(commit_set=pfs.CommitSet(id=third.id))
    assert [c.id for c in client.pfs.inspect_commit(commit=first).child_commits] == [second.id]


def test_start_commit_fork(client: Client):
    """TestStartCommitFork: StartCommit on a new branch with another branch's head as parent
    forks it; ListCommit shows both commits."""
    client.pfs.create_repo(repo=repo("A"))
    first = commit_files(client, "A", {"/x": b"1"})
    fork = client.pfs.start_commit(branch=branch("A", "master2"), parent=head("A"))
    client.pfs.finish_commit(commit=fork)
    assert client.pfs.inspect_commit(commit=fork).parent_commit.id == first.id
    assert read(client, fork, "/x") == b"1"
    assert sorted(ids(client.pfs.list_commit(repo=repo("A")))) == sorted([first.id, fork.id])


def test_first_commit_has_no_parent(client: Client):
    """TestBranch: the first commit on a branch has no parent; the next one has one."""
    client.pfs.create_repo(repo=repo("repo"))
    first = commit_files(client, "repo", {})
    parent = client.pfs.inspect_commit(commit=head("repo")).parent_commit
    assert not betterproto.serialized_on_wire(parent)
    commit_files(client, "repo", {})
    assert client.pfs.inspect_commit(commit=head("repo")).parent_commit.id == first.id


def test_commit_description_comes_from_start_or_finish(client: Client):
    """TestCommitDescription: a description given to StartCommit, or to FinishCommit, is the
    commit's description; one given to both ends as FinishCommit's."""
    client.pfs.create_repo(repo=repo("test"))
    c = client.pfs.start_commit(branch=branch("test"), description="in start commit")
    client.pfs.finish_commit(commit=c)
    assert client.pfs.inspect_commit(commit=c).description == "in start commit"
    c = client.pfs.start_commit(branch=branch("test"))
    client.pfs.finish_commit(commit=c, description="in finish commit")
    assert client.pfs.inspect_commit(commit=c).description == "in finish commit"
    c = client.pfs.start_commit(branch=branch("test"), description="in start commit")
    client.pfs.finish_commit(commit=c, description="overwrites")
    assert client.pfs.inspect_commit(commit=c).description == "overwrites"


def test_inspect_commit_by_id_has_no_branch(client: Client):
    """TestNilBranchNameUnary: InspectCommit of a commit by ID returns the commit without a
    branch."""
    client.pfs.create_repo(repo=repo("test"))
    c = commit_files(client, "test", {"dir/foo": b"foo\n"})
    info = client.pfs.inspect_commit(commit=at("test", c.id))
    assert info.commit.id == c.id and not betterproto.serialized_on_wire(info.commit.branch)


def test_list_commit_started_time(client: Client):
    """TestListCommitStartedTime: ListCommit with ``started_time`` lists the commits started
    before it, newest first (none before the oldest); ``reverse`` with ``number`` 1 gives the
    oldest commit."""
    client.pfs.create_repo(repo=repo("foo"))
    made = [commit_files(client, "foo", {}).id for _ in range(3)]
    (newest,) = client.pfs.list_commit(repo=repo("foo"), number=1)
    assert newest.commit.id == made[2]
    older = list(client.pfs.list_commit(repo=repo("foo"), number=2, started_time=newest.started))
    assert ids(older) == [made[1], made[0]]
    assert (
        list(client.pfs.list_commit(repo=repo("foo"), number=1, started_time=older[1].started))
        == []
    )
    assert ids(client.pfs.list_commit(repo=repo("foo"), number=1, reverse=True)) == [made[0]]


def test_wait_for_ready_commit(client: Client):
    """TestCommitState: InspectCommit waiting for READY on B (provenance A) blocks while A's
    commit is open and returns, B still open, once it is finished; a new branch C with A as
    provenance is READY at once."""
    for name in ("A", "B"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A")])
    client.pfs.start_commit(branch=branch("A"))
    got: list[pfs.CommitInfo] = []

    def wait_ready() -> None:
        got.append(client.pfs.inspect_commit(commit=head("B"), wait=pfs.CommitState.READY))

    waiter = threading.Thread(target=wait_ready, daemon=True)
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive()
    client.pfs.finish_commit(commit=head("A"))
    waiter.join(timeout=10)
    assert not waiter.is_alive() and got
    assert got[0].finished is None or got[0].finished.timestamp() <= 0
    client.pfs.create_repo(repo=repo("C"))
    client.pfs.create_branch(branch=branch("C"), provenance=[branch("A")])
    ready = client.pfs.inspect_commit(commit=head("C"), wait=pfs.CommitState.READY)
    assert ready.finished is None or ready.finished.timestamp() <= 0


def test_start_commit_on_output_branch_is_refused(client: Client):
    """server_commit.go startCommit (ErrCommitOnOutputBranch): StartCommit on a branch with
    branch provenance fails, with no status code (UNKNOWN) and "start commit in transaction:
    cannot start a commit on an output branch: default/B@master"; a put file addressed to
    that branch while its head is finished fails the same way, without the RPC's wrapping
    (the one-off commit pachd would start), and no commit is added."""
    for name in ("A", "B"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A")])
    client.pfs.finish_commit(commit=head("B"))
    before = ids(client.pfs.list_commit(repo=repo("B")))
    err = fails(lambda: client.pfs.start_commit(branch=branch("B")))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNKNOWN,
        "start commit in transaction: cannot start a commit on an output branch: default/B@master",
    )
    err = fails(lambda: put(client, head("B"), "file", b"x"))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNKNOWN,
        "cannot start a commit on an output branch: default/B@master",
    )
    assert ids(client.pfs.list_commit(repo=repo("B"))) == before


def test_put_file_into_open_output_commit(client: Client):
    """TestPutFileOutputRepo: a commit to the input opens a commit on the output branch; a put
    file to the output branch writes into it, and the finished output holds just that file."""
    for name in ("input", "output"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("output"), provenance=[branch("input")])
    client.pfs.finish_commit(commit=head("output"))
    put(client, head("input"), "foo", b"foo\n")
    put(client, head("output"), "bar", b"bar\n")
    client.pfs.finish_commit(commit=head("output"))
    assert ls(client, head("output"), "") == ["/bar"]
    assert read(client, head("output"), "bar") == b"bar\n"


def test_ancestry_dot_syntax(client: Client):
    """TestAncestrySyntax: ``master.1`` names the branch's first commit, ``master.2`` the
    second."""
    client.pfs.create_repo(repo=repo("test"))
    made = [commit_files(client, "test", {}).id for _ in range(3)]
    assert client.pfs.inspect_commit(commit=at("test", "master.1")).commit.id == made[0]
    assert client.pfs.inspect_commit(commit=at("test", "master.2")).commit.id == made[1]
