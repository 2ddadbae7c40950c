"""An audit of the local server against behaviours pachd 2.12's own server tests state.

Each test names the Go test it follows in ``src/server/pfs/server/testing/server_test.go``
(github.com/pachyderm/pachyderm, branch 2.12.x), or, where no server test states the
behaviour, the server code; the facts its assertions state are checked
here through the real ``pachyderm_sdk`` client against the real local server. Where the local
server differs, the test is an ``xfail(strict=True)`` whose reason says what pachd does and what
the local server does; README.md's "Audit against pachd 2.12's server tests" lists them all.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import betterproto
import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs


def repo(name: str, project: str = "default") -> pfs.Repo:
    return pfs.Repo(name=name, project=pfs.Project(name=project))


def branch(repo_name: str, name: str = "master", project: str = "default") -> pfs.Branch:
    return pfs.Branch(repo=repo(repo_name, project), name=name)


def head(repo_name: str, name: str = "master") -> pfs.Commit:
    return pfs.Commit(repo=repo(repo_name), branch=branch(repo_name, name))


def at(repo_name: str, commit_id: str) -> pfs.Commit:
    return pfs.Commit(repo=repo(repo_name), id=commit_id)


def fails(call: Callable[[], object]) -> grpc.RpcError:
    """The gRPC error ``call`` fails with (iterating it when it streams)."""
    with pytest.raises(grpc.RpcError) as err:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    return err.value


def read(client: Client, commit: pfs.Commit, path: str, offset: int = 0) -> bytes:
    file = pfs.File(commit=commit, path=path)
    return b"".join(chunk.value for chunk in client.pfs.get_file(file=file, offset=offset))


def put(client: Client, commit: pfs.Commit, path: str, data: bytes, append: bool = False):
    client.pfs.put_file_from_bytes(commit=commit, path=path, data=data, append=append)


def commit_files(client: Client, repo_name: str, files: dict[str, bytes], name: str = "master"):
    with client.pfs.commit(branch=branch(repo_name, name)) as c:
        for path, data in files.items():
            c.put_file_from_bytes(path, data)
    return c


def ls(client: Client, commit: pfs.Commit, path: str = "/") -> list[str]:
    return [i.file.path for i in client.pfs.list_file(file=pfs.File(commit=commit, path=path))]


def ids(infos) -> list[str]:
    return [i.commit.id for i in infos]


def ids_of(commits) -> list[str]:
    return [c.id for c in commits]


# Repos and projects


def test_invalid_repo_names(client: Client):
    """TestInvalidRepo: letters, digits, ``_`` and ``-`` make a valid repo name; ``/``, ``.``,
    ``:``, ``,`` and ``#`` are refused."""
    for name in ("lenny", "lenny123", "lenny_123", "lenny-123"):
        client.pfs.create_repo(repo=repo(name))
    for name in ("/repo", "lenny.123", "lenny:", "lenny,", "lenny#"):
        fails(lambda name=name: client.pfs.create_repo(repo=repo(name)))
    assert {r.repo.name for r in client.pfs.list_repo()} == {
        "lenny",
        "lenny123",
        "lenny_123",
        "lenny-123",
    }


def test_create_same_repo_in_parallel(client: Client):
    """TestCreateSameRepoInParallel: of many concurrent creates of one repo exactly one
    succeeds."""
    results: list[bool] = []

    def create() -> None:
        try:
            client.pfs.create_repo(repo=repo("repo"))
            results.append(True)
        except grpc.RpcError:
            results.append(False)

    threads = [threading.Thread(target=create) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(results) == 40


def test_create_different_repos_in_parallel(client: Client):
    """TestCreateDifferentRepoInParallel: concurrent creates of different repos all succeed."""
    threads = [
        threading.Thread(target=lambda i=i: client.pfs.create_repo(repo=repo(f"repo{i}")))
        for i in range(40)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(client.pfs.list_repo())) == 40


def test_create_repo_in_nonexistent_project(client: Client):
    """TestCreateRepoNonExistentProject: a repo in a missing project is refused; once the
    project exists it is created."""
    fails(lambda: client.pfs.create_repo(repo=repo("bar", "foo")))
    client.pfs.create_project(project=pfs.Project(name="foo"))
    client.pfs.create_repo(repo=repo("bar", "foo"))
    assert client.pfs.inspect_repo(repo=repo("bar", "foo")).repo.project.name == "foo"


def test_list_repo_lists_every_repo(client: Client):
    """TestListRepo: ListRepo returns each created repo once."""
    names = [f"repo{i}" for i in range(10)]
    for name in names:
        client.pfs.create_repo(repo=repo(name))
    assert sorted(r.repo.name for r in client.pfs.list_repo()) == sorted(names)


def test_create_deleted_repo_does_not_resurface_commits(client: Client):
    """TestCreateDeletedRepo: a repo deleted and created again has no commits or branches."""
    client.pfs.create_repo(repo=repo("repo"))
    commit_files(client, "repo", {"/foo": b"foo"})
    assert len(list(client.pfs.list_commit(repo=repo("repo")))) == 1
    client.pfs.delete_repo(repo=repo("repo"))
    client.pfs.create_repo(repo=repo("repo"))
    assert list(client.pfs.list_commit(repo=repo("repo"))) == []
    assert list(client.pfs.list_branch(repo=repo("repo"))) == []
    assert len(list(client.pfs.list_repo())) == 1


def test_delete_some_repos(client: Client):
    """TestDeleteRepo2: after deleting 5 of 10 repos ListRepo returns exactly the other 5."""
    for i in range(10):
        client.pfs.create_repo(repo=repo(f"repo{i}"))
    for i in range(0, 10, 2):
        client.pfs.delete_repo(repo=repo(f"repo{i}"))
    assert sorted(r.repo.name for r in client.pfs.list_repo()) == [
        f"repo{i}" for i in range(1, 10, 2)
    ]


def test_delete_repo_with_subvenance(client: Client):
    """TestDeleteRepoProvenance: deleting a repo that another repo's branch has as provenance
    fails; deleting the downstream repo first, then it, succeeds; ``force`` deletes it
    anyway, leaving the downstream repo."""
    for name in ("A", "B"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A")])
    commit_files(client, "A", {})
    fails(lambda: client.pfs.delete_repo(repo=repo("A")))
    client.pfs.delete_repo(repo=repo("B"))
    client.pfs.delete_repo(repo=repo("A"))
    assert list(client.pfs.list_repo()) == []
    for name in ("A", "B"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("B"), provenance=[branch("A")])
    client.pfs.delete_repo(repo=repo("A"), force=True)
    assert [r.repo.name for r in client.pfs.list_repo()] == ["B"]


def test_delete_repos_without_projects_deletes_nothing(client: Client):
    """TestDeleteRepos: DeleteRepos with no projects (and not ``all``) does not fail and
    deletes nothing."""
    client.pfs.create_repo(repo=repo("keep"))
    client.pfs.delete_repos()
    assert [r.repo.name for r in client.pfs.list_repo()] == ["keep"]


def test_delete_repos_by_project_and_all(client: Client):
    """TestDeleteRepos: DeleteRepos with an unknown project deletes nothing and does not
    fail; with a project it deletes exactly that project's repos and returns them; with
    ``all`` it deletes every repo."""
    for project in ("p1", "p2"):
        client.pfs.create_project(project=pfs.Project(name=project))
        for i in range(3):
            client.pfs.create_repo(repo=repo(f"repo{i}", project))
    assert len(client.pfs.delete_repos(projects=[pfs.Project(name="noexist")]).repos) == 0
    assert len(list(client.pfs.list_repo())) == 6
    deleted = client.pfs.delete_repos(projects=[pfs.Project(name="p1")]).repos
    assert sorted((r.project.name, r.name) for r in deleted) == [
        ("p1", f"repo{i}") for i in range(3)
    ]
    left = list(client.pfs.list_repo(projects=[pfs.Project(name="p2")]))
    assert sorted(r.repo.name for r in left) == [f"repo{i}" for i in range(3)]
    assert len(client.pfs.delete_repos(all=True).repos) == 3
    assert list(client.pfs.list_repo()) == []


def test_create_and_inspect_repo(client: Client):
    """TestCreateAndInspectRepo: a new repo inspects with its name, a creation time and size 0;
    creating it again fails, and so does inspecting a missing repo."""
    client.pfs.create_repo(repo=repo("repo"))
    info = client.pfs.inspect_repo(repo=repo("repo"))
    assert (info.repo.name, info.details.size_bytes) == ("repo", 0)
    assert info.created.timestamp() > 0
    fails(lambda: client.pfs.create_repo(repo=repo("repo")))
    fails(lambda: client.pfs.inspect_repo(repo=repo("nonexistent")))


def test_update_repo_keeps_its_creation_time(client: Client):
    """TestUpdateRepo: CreateRepo with ``update`` creates a missing repo; on an existing one it
    sets the description and keeps the creation time."""
    client.pfs.create_repo(repo=repo("test"), update=True)
    created = client.pfs.inspect_repo(repo=repo("test")).created
    client.pfs.create_repo(repo=repo("test"), update=True, description="foo")
    info = client.pfs.inspect_repo(repo=repo("test"))
    assert (info.created, info.description) == (created, "foo")


def test_inspect_repo_size_counts_master_only(client: Client):
    """TestInspectRepoSimple: a repo whose files were committed to another branch than
    ``master`` has size 0."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {"foo": b"foo\n", "bar": b"bar\n"}, name="branch")
    assert client.pfs.inspect_repo(repo=repo("test")).details.size_bytes == 0


def test_update_provenance_moves_what_blocks_repo_deletion(client: Client):
    """TestUpdateProvenance: CreateRepo of an existing repo fails unless ``update``; after its
    branch's provenance changes from prov1, prov2 to prov2, prov3, prov1 can be deleted and
    prov3 cannot."""
    for name in ("prov1", "prov2", "prov3", "repo", "downstream1", "downstream2"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("repo"), provenance=[branch("prov1"), branch("prov2")])
    for name in ("downstream1", "downstream2"):
        client.pfs.create_branch(branch=branch(name), provenance=[branch("repo")])
    fails(lambda: client.pfs.create_repo(repo=repo("repo")))
    client.pfs.create_repo(repo=repo("repo"), update=True)
    client.pfs.create_branch(branch=branch("repo"), provenance=[branch("prov2"), branch("prov3")])
    client.pfs.delete_repo(repo=repo("prov1"))
    fails(lambda: client.pfs.delete_repo(repo=repo("prov3")))


def test_error_codes_and_no_repo_type_in_messages(client: Client):
    """TestErrorMessages: a missing repo, branch or commit is NOT_FOUND and a repo created twice
    ALREADY_EXISTS; no message shows the ``user`` repo type."""
    err = fails(lambda: client.pfs.inspect_repo(repo=repo("test")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "user" not in err.details()
    client.pfs.create_repo(repo=repo("test"))
    err = fails(lambda: client.pfs.create_repo(repo=repo("test")))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "user" not in err.details()
    err = fails(lambda: client.pfs.inspect_branch(branch=branch("test", "branch")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "user" not in err.details()
    missing = pfs.Commit(repo=repo("test"), branch=branch("test", "branch"), id=uuid.uuid4().hex)
    err = fails(lambda: client.pfs.inspect_commit(commit=missing))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "user" not in err.details()


def test_invalid_project_names(client: Client):
    """TestInvalidProject: letters, digits, ``_`` and ``-`` make a valid project name;
    ``default`` already exists; any other character is refused ("only alphanumeric
    characters"), and so is a name starting with ``_`` or ``-`` ("must start with an
    alphanumeric character")."""
    for name in ("my-PROJECT_0123456789", "lenny", "lenny123", "lenny_123", "lenny-123"):
        client.pfs.create_project(project=pfs.Project(name=name))
    err = fails(lambda: client.pfs.create_project(project=pfs.Project(name="default")))
    assert "already exists" in err.details()
    bad = ["/repo", "lenny.123", "lenny:", "lenny,", "lenny#", "!project", '"', "\\", "'"]
    bad += ["[]{}", "|", "new->project", "project?", "project:1", "project;", "project."]
    for name in bad:
        err = fails(lambda name=name: client.pfs.create_project(project=pfs.Project(name=name)))
        assert "only alphanumeric characters" in err.details(), name
    for name in ("_lenny", "-lenny"):
        err = fails(lambda name=name: client.pfs.create_project(project=pfs.Project(name=name)))
        assert "must start with an alphanumeric character" in err.details(), name


def test_delete_project_with_repos_fails_even_forced(client: Client):
    """TestDeleteProjectWithRepos, TestDeleteProject: deleting a project that still has a repo
    fails, with or without ``force``, and leaves every repo; once its repo is deleted the
    project is deleted, and the other project's repo stays."""
    client.pfs.create_project(project=pfs.Project(name="test"))
    client.pfs.create_repo(repo=repo("test"))
    client.pfs.create_repo(repo=repo("test", "test"))
    fails(lambda: client.pfs.delete_project(project=pfs.Project(name="test")))
    assert len(list(client.pfs.list_repo())) == 2
    fails(lambda: client.pfs.delete_project(project=pfs.Project(name="test"), force=True))
    assert len(list(client.pfs.list_repo())) == 2
    client.pfs.delete_repo(repo=repo("test", "test"))
    client.pfs.delete_project(project=pfs.Project(name="test"))
    assert [(r.repo.project.name, r.repo.name) for r in client.pfs.list_repo()] == [
        ("default", "test")
    ]
    assert not client.pfs.project_exists(pfs.Project(name="test"))


# Commits


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


def test_ancestry_syntax(client: Client):
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


def test_commit_description(client: Client):
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


# Commit sets


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


# Branches


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


# Files


def test_append_and_overwrite(client: Client):
    """TestSimpleFile, TestPutFileCommitOverwrite: an append adds to the parent's file (the
    parent keeps its content); a plain put to a branch head replaces the file."""
    client.pfs.create_repo(repo=repo("test"))
    c1 = client.pfs.start_commit(branch=branch("test"))
    put(client, c1, "foo", b"foo\n", append=True)
    client.pfs.finish_commit(commit=c1)
    c2 = client.pfs.start_commit(branch=branch("test"))
    put(client, c2, "foo", b"foo\n", append=True)
    client.pfs.finish_commit(commit=c2)
    assert read(client, c1, "foo") == b"foo\n"
    assert read(client, c2, "foo") == b"foo\nfoo\n"
    for i in range(5):
        put(client, head("test"), "file", str(i).encode())
    assert read(client, head("test"), "file") == b"4"


def test_get_file_offset_invalid_commit_and_directory(client: Client):
    """TestGetFile: a file reads the same before and after its commit finishes; GetFile with
    an offset returns the rest of the file (empty at its end); a bad commit ID or a
    directory path fails."""
    client.pfs.create_repo(repo=repo("test"))
    commit = client.pfs.start_commit(branch=branch("test"))
    put(client, commit, "dir/file", b"foo\n")
    assert read(client, commit, "dir/file") == b"foo\n"
    client.pfs.finish_commit(commit=commit)
    assert read(client, commit, "dir/file") == b"foo\n"
    for i in range(5):
        assert read(client, commit, "dir/file", offset=i) == b"foo\n"[i:]
    fails(lambda: read(client, at("test", "aninvalidcommitid"), "dir/file"))
    fails(lambda: read(client, commit, "dir"))


def test_inspect_file_size_through_appends_and_delete(client: Client):
    """TestInspectFile, TestInspectFile2: InspectFile gives FILE and the size before and
    after finishing; appends add to it; delete then put in one commit leaves the new data;
    the path is returned absolute."""
    client.pfs.create_repo(repo=repo("test"))
    c1 = client.pfs.start_commit(branch=branch("test"))
    put(client, c1, "file", b"foo\n", append=True)
    for finish in (True, False):
        info = client.pfs.inspect_file(file=pfs.File(commit=c1, path="file"))
        assert (info.file_type, info.size_bytes, info.file.path) == (pfs.FileType.FILE, 4, "/file")
        if finish:
            client.pfs.finish_commit(commit=c1)
    put(client, head("test"), "file", b"foo\n", append=True)
    assert client.pfs.inspect_file(file=pfs.File(commit=head("test"), path="file")).size_bytes == 8
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.delete_file(path="file")
        c3.put_file_from_bytes("file", b"buzz\n", append=True)
    assert client.pfs.inspect_file(file=pfs.File(commit=c3, path="file")).size_bytes == 5


def test_inspect_dir(client: Client):
    """TestInspectDir, TestInspectDir2, TestInspectFile3: a directory inspects as DIR with
    its contents' size and a trailing-slash path; the root does too; a directory is visible
    in an open commit."""
    client.pfs.create_repo(repo=repo("test"))
    c = client.pfs.start_commit(branch=branch("test"))
    put(client, c, "foo/bar", b"foo\n")
    assert (
        client.pfs.inspect_file(file=pfs.File(commit=c, path="foo")).file_type == pfs.FileType.DIR
    )
    client.pfs.finish_commit(commit=c)
    with client.pfs.commit(branch=branch("test")) as c2:
        c2.put_file_from_bytes("dir/1", b"foo\n")
        c2.put_file_from_bytes("dir/2", b"foo\n")
    info = client.pfs.inspect_file(file=pfs.File(commit=c2, path="/dir"))
    assert (info.file.path, info.file_type, info.size_bytes) == ("/dir/", pfs.FileType.DIR, 8)
    root = client.pfs.inspect_file(file=pfs.File(commit=c2, path=""))
    assert (root.file_type, root.size_bytes) == (pfs.FileType.DIR, 12)


def test_list_file_root(client: Client):
    """TestRootDirectory, TestListFileTwoCommits: ListFile of the root lists the files, and
    a child commit lists its parent's files too."""
    client.pfs.create_repo(repo=repo("test"))
    c1 = commit_files(client, "test", {f"file{i}": b"foo\n" for i in range(5)})
    c2 = commit_files(client, "test", {f"file{i}": b"foo\n" for i in range(5, 10)})
    assert len(ls(client, c1, "")) == 5
    assert len(ls(client, c2, "/")) == 10


def test_delete_file_semantics(client: Client):
    """TestDeleteFile: a file put then deleted in one commit is gone; deleting in a finished
    commit fails; an empty child keeps the files; a later delete removes the file; deleting
    a nonexistent file is a no-op."""
    client.pfs.create_repo(repo=repo("test"))
    with client.pfs.commit(branch=branch("test")) as c1:
        c1.put_file_from_bytes("foo", b"foo\n")
        c1.put_file_from_bytes("bar", b"bar\n")
        c1.delete_file(path="foo")
    assert ls(client, c1) == ["/bar"]
    fails(lambda: client.pfs.inspect_file(file=pfs.File(commit=c1, path="foo")))
    fails(lambda: client.pfs.delete_file(commit=c1, path="bar"))
    c2 = commit_files(client, "test", {})
    assert ls(client, c2) == ["/bar"]
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.delete_file(path="bar")
    assert ls(client, c3) == []
    with client.pfs.commit(branch=branch("test")) as c4:
        c4.delete_file(path="nonexistent")
    assert ls(client, c4) == []


def test_delete_then_put_in_one_commit(client: Client):
    """TestDeleteFile2: delete then put in one commit leaves the new content; put, delete,
    put leaves the last put."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {"file": b"foo\n"})
    with client.pfs.commit(branch=branch("test")) as c2:
        c2.delete_file(path="file")
        c2.put_file_from_bytes("file", b"bar\n")
    assert read(client, head("test"), "file") == b"bar\n"
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.put_file_from_bytes("file", b"buzz\n")
        c3.delete_file(path="file")
        c3.put_file_from_bytes("file", b"foo\n")
    assert read(client, c3, "file") == b"foo\n"


def test_delete_dir(client: Client):
    """TestDeleteDir: deleting ``/dir/`` removes the files under it; the directory no longer
    exists."""
    client.pfs.create_repo(repo=repo("test"))
    with client.pfs.commit(branch=branch("test")) as c1:
        c1.put_file_from_bytes("dir/foo", b"foo1")
        c1.put_file_from_bytes("dir/bar", b"bar1")
        c1.delete_file(path="/dir/")
    assert ls(client, c1) == []
    fails(lambda: client.pfs.inspect_file(file=pfs.File(commit=c1, path="dir")))


def test_put_file_into_finished_commit_fails(client: Client):
    """TestPutFileIntoOpenCommit: a put file to a commit by ID fails once it is finished."""
    client.pfs.create_repo(repo=repo("test"))
    for _ in range(2):
        c = client.pfs.start_commit(branch=branch("test"))
        put(client, c, "foo", b"foo\n")
        client.pfs.finish_commit(commit=c)
        fails(lambda c=c: put(client, at("test", c.id), "foo", b"foo\n"))


def test_put_file_directory_traversal(client: Client):
    """TestPutFileDirectoryTraversal: put file paths ``../foo``, ``foo/../../bar`` and
    ``foo/../bar`` are refused and nothing is written."""
    client.pfs.create_repo(repo=repo("repo"))
    client.pfs.start_commit(branch=branch("repo"))
    for path in ("../foo", "foo/../../bar", "foo/../bar"):
        fails(lambda path=path: put(client, head("repo"), path, b"foo\n"))
    assert ls(client, head("repo"), "") == []


def test_file_and_directory_collision_errors_the_commit(client: Client):
    """TestPutFileValidPaths: a one-off commit writing ``foo/bar`` and ``foo`` finishes with an
    error (a path cannot be both a file and a directory)."""
    client.pfs.create_repo(repo=repo("test"))
    requests = [
        pfs.ModifyFileRequest(set_commit=head("test", "branch-2")),
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="foo/bar", raw=b"foo\n")),
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="foo", raw=b"foo\n")),
    ]
    client.pfs.modify_file(iter(requests))
    info = client.pfs.inspect_commit(commit=head("test", "branch-2"), wait=pfs.CommitState.FINISHED)
    assert info.error != ""


def test_put_and_delete_through_the_branch_head(client: Client):
    """TestPutFile: puts addressed to the branch replace the file; a delete then a put leaves
    the new content."""
    client.pfs.create_repo(repo=repo("test"))
    for data in (b"foo", b"bar"):
        put(client, head("test"), "file", data)
        assert read(client, head("test"), "file") == data
    client.pfs.delete_file(commit=head("test"), path="file")
    put(client, head("test"), "file", b"buzz")
    assert read(client, head("test"), "file") == b"buzz"


def test_delete_directory_then_write_into_it(client: Client):
    """TestDeleteFile3: after deleting ``/`` and rewriting, deleting ``/dir1/dir2/`` leaves
    ``/dir1`` and ``/dir1/bar`` and removes the directory and its files; a later put recreates
    it."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {"/bar": b"bar\n", "/dir1/dir2/bar": b"bar\n"})
    with client.pfs.commit(branch=branch("test")) as c2:
        c2.delete_file(path="/")
        for path in ("/bar", "/dir1/bar", "/dir1/dir2/bar", "/dir1/dir2/barbar"):
            c2.put_file_from_bytes(path, b"bar\n")
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.delete_file(path="/dir1/dir2/")

    def exists(commit: pfs.Commit, path: str) -> bool:
        return client.pfs.path_exists(pfs.File(commit=commit, path=path))

    assert exists(c3, "/dir1") and exists(c3, "/dir1/bar")
    assert not any(exists(c3, p) for p in ("/dir1/dir2", "/dir1/dir2/bar", "/dir1/dir2/barbar"))
    c4 = commit_files(client, "test", {"/dir1/dir2/bar": b"bar\n"})
    assert all(exists(c4, p) for p in ("/dir1", "/dir1/bar", "/dir1/dir2", "/dir1/dir2/bar"))


def test_list_file_of_a_directory(client: Client):
    """TestListFile, TestListFile2, TestListFile3: ListFile of a directory lists its entries
    with their sizes (a subdirectory's is its files'), in an open commit and after, through
    added and deleted files."""
    client.pfs.create_repo(repo=repo("test"))
    c = client.pfs.start_commit(branch=branch("test"))
    put(client, c, "dir/1", b"foo\n")
    put(client, c, "dir/2", b"foo\n")

    def listing() -> list[tuple[str, int]]:
        entries = client.pfs.list_file(file=pfs.File(commit=head("test"), path="dir"))
        return [(i.file.path, i.size_bytes) for i in entries]

    assert listing() == [("/dir/1", 4), ("/dir/2", 4)]
    client.pfs.finish_commit(commit=c)
    assert listing() == [("/dir/1", 4), ("/dir/2", 4)]
    commit_files(client, "test", {"dir/3/foo": b"foo\n", "dir/3/bar": b"foo\n"})
    assert listing() == [("/dir/1", 4), ("/dir/2", 4), ("/dir/3/", 8)]
    with client.pfs.commit(branch=branch("test")) as c3:
        c3.delete_file(path="dir/3/bar")
        c3.delete_file(path="dir/2")
    assert listing() == [("/dir/1", 4), ("/dir/3/", 4)]
    commit_files(client, "test", {"file": b"foo\n"})
    assert len(ls(client, head("test"), "/")) == 2


def test_list_file_pagination(client: Client):
    """TestListFileTest: ListFile of ``/dir1`` lists it and not its siblings, and of ``/`` the
    directories; a pagination marker starts after that file, ``number`` limits, ``reverse``
    goes backwards from the end or the marker, and ``reverse`` without ``number`` fails."""
    client.pfs.create_repo(repo=repo("test"))
    c = client.pfs.start_commit(branch=branch("test"))
    for path in (
        "/dir1/file1.5",
        "/dir1/file1.2",
        "/dir1/file1.1",
        "/dir2/file2.1",
        "/dir2/file2.2",
    ):
        put(client, c, path, b"")
    client.pfs.finish_commit(commit=c)

    def page(**kwargs) -> list[str]:
        if "marker" in kwargs:
            kwargs["pagination_marker"] = pfs.File(commit=c, path=kwargs.pop("marker"))
        return [
            i.file.path
            for i in client.pfs.list_file(file=pfs.File(commit=c, path="/dir1"), **kwargs)
        ]

    assert page() == ["/dir1/file1.1", "/dir1/file1.2", "/dir1/file1.5"]
    assert ls(client, c, "/") == ["/dir1/", "/dir2/"]
    assert page(marker="/dir1/file1.2") == ["/dir1/file1.5"]
    assert page(marker="/dir1/file1.1", number=2) == ["/dir1/file1.2", "/dir1/file1.5"]
    assert page(number=1, reverse=True) == ["/dir1/file1.5"]
    fails(lambda: page(reverse=True))
    assert page(marker="/dir1/file1.1", number=2, reverse=True) == []
    assert page(marker="/dir1/file1.5", number=2, reverse=True) == [
        "/dir1/file1.2",
        "/dir1/file1.1",
    ]


def test_walk_file(client: Client):
    """TestWalkFile, TestWalkFile2: WalkFile of the root lists ``/`` then every directory and
    file depth first, in an open commit and after; of a directory, it and what it holds; of
    a file, the file."""
    client.pfs.create_repo(repo=repo("test"))
    c = client.pfs.start_commit(branch=branch("test"))
    for path, data in (("dir/bar", b"bar"), ("dir/dir2/buzz", b"buzz"), ("foo", b"foo")):
        put(client, c, path, data)

    def walk(path: str) -> list[str]:
        return [i.file.path for i in client.pfs.walk_file(file=pfs.File(commit=c, path=path))]

    expected = ["/", "/dir/", "/dir/bar", "/dir/dir2/", "/dir/dir2/buzz", "/foo"]
    assert walk("") == expected
    client.pfs.finish_commit(commit=c)
    assert walk("") == expected
    assert walk("/dir/dir2") == ["/dir/dir2/", "/dir/dir2/buzz"]
    assert walk("/dir/bar") == ["/dir/bar"]


def test_walk_file_pagination(client: Client):
    """TestWalkFileTest: WalkFile of ``/`` lists 11 entries; of ``/dir`` with ``number`` 4 the
    first four; after a marker the rest; ``reverse`` with ``number`` from the end or back
    from the marker; ``reverse`` without ``number`` fails."""
    client.pfs.create_repo(repo=repo("test"))
    c = client.pfs.start_commit(branch=branch("test"))
    for d in (1, 2, 3):
        for i in (1, 2):
            put(client, c, f"/dir/dir{d}/file{d}.{i}", b"")
    client.pfs.finish_commit(commit=c)

    def walk(path: str = "/dir", **kwargs) -> list[str]:
        if "marker" in kwargs:
            kwargs["pagination_marker"] = pfs.File(commit=c, path=kwargs.pop("marker"))
        return [
            i.file.path for i in client.pfs.walk_file(file=pfs.File(commit=c, path=path), **kwargs)
        ]

    assert len(walk("/")) == 11
    first = walk(number=4)
    assert first == ["/dir/", "/dir/dir1/", "/dir/dir1/file1.1", "/dir/dir1/file1.2"]
    assert len(walk(marker=first[-1])) == 6
    assert walk(number=2, reverse=True) == ["/dir/dir3/file3.2", "/dir/dir3/file3.1"]
    fails(lambda: walk(reverse=True))
    assert walk(marker="/dir/dir1/file1.2", number=3, reverse=True) == [
        "/dir/dir1/file1.1",
        "/dir/dir1/",
        "/dir/",
    ]


def test_copy_file(client: Client):
    """TestCopyFile: CopyFile copies a directory, a single file and the whole root (under a
    new prefix) from another commit."""
    client.pfs.create_repo(repo=repo("test"))
    src = commit_files(client, "test", {f"files/{i}": f"foo {i}\n".encode() for i in range(5)})
    with client.pfs.commit(branch=branch("test", "other")) as other:
        other.copy_file(src=pfs.File(commit=src, path="files"), dst="files", append=True)
        other.copy_file(src=pfs.File(commit=src, path="files/0"), dst="file0", append=True)
        other.copy_file(src=pfs.File(commit=src, path="/"), dst="all", append=True)
    for i in range(5):
        assert read(client, other, f"files/{i}") == f"foo {i}\n".encode()
        assert read(client, other, f"all/files/{i}") == f"foo {i}\n".encode()
    assert read(client, other, "file0") == b"foo 0\n"


def test_diff_file(client: Client):
    """TestDiffFile: DiffFile of a commit against its parent lists the changed paths with
    (files only here; the root is checked below): a new file (new side only), a replaced
    file (both sides), a deleted file (old side only), files in a new directory."""
    client.pfs.create_repo(repo=repo("test"))

    def diff(commit: pfs.Commit) -> tuple[list[str], list[str]]:
        new, old = [], []
        for d in client.pfs.diff_file(new_file=pfs.File(commit=commit, path="/")):
            if d.new_file and d.new_file.file.path not in ("", "/"):
                new.append(d.new_file.file.path)
            if d.old_file and d.old_file.file.path not in ("", "/"):
                old.append(d.old_file.file.path)
        return new, old

    c1 = commit_files(client, "test", {"foo": b"foo\n"})
    assert diff(c1) == (["/foo"], [])
    with client.pfs.commit(branch=branch("test")) as c2:
        c2.delete_file(path="/foo")
        c2.put_file_from_bytes("foo", b"not foo\n")
    assert diff(c2) == (["/foo"], ["/foo"])
    c3 = commit_files(client, "test", {"/bar": b"bar\n"})
    assert diff(c3) == (["/bar"], [])
    with client.pfs.commit(branch=branch("test")) as c4:
        c4.delete_file(path="/bar")
    assert diff(c4) == ([], ["/bar"])
    c5 = commit_files(client, "test", {"/dir/fizz": b"fizz\n", "/dir/buzz": b"buzz\n"})
    assert diff(c5) == (["/dir/buzz", "/dir/fizz"], [])


def test_glob_file_patterns(client: Client):
    """TestGlobFile: ``file*``, ``dir1/*``, ``dir2/dir3/*`` and ``*/*`` match one level;
    after deleting ``/``, ``**`` matches nothing."""
    client.pfs.create_repo(repo=repo("test"))
    n = 20
    files = {}
    for i in range(n):
        files[f"file{i}"] = b"1"
        files[f"dir1/file{i}"] = b"2"
        files[f"dir2/dir3/file{i}"] = b"3"
    c = commit_files(client, "test", files)

    def count(pattern: str) -> int:
        return len(list(client.pfs.glob_file(commit=c, pattern=pattern)))

    assert [count(p) for p in ("file*", "dir1/*", "dir2/dir3/*", "*/*")] == [
        n,
        n,
        n,
        n + 1,
    ]
    with client.pfs.commit(branch=branch("test")) as empty:
        empty.delete_file(path="/")
    assert list(client.pfs.glob_file(commit=empty, pattern="**")) == []


def test_glob_file_prefix_and_suffix(client: Client):
    """TestGlobFile2, TestGlobFile3: ``/1*`` matches the names starting with 1; ``**.2``
    matches at any depth; ``/dir1/*`` lists a directory; ``/*`` gives the directories with a
    trailing slash; ``/`` gives the root."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {f"/{i}": b"x" for i in range(30)})
    got = sorted(f.file.path for f in client.pfs.glob_file(commit=head("test"), pattern="/1*"))
    assert got == sorted(f"/{i}" for i in range(30) if str(i).startswith("1"))
    c = commit_files(
        client, "test", {p: b"" for p in ("/dir1/file1.1", "/dir1/file1.2", "/dir2/file2.1")}
    )

    def glob(pattern: str) -> list[str]:
        return sorted(f.file.path for f in client.pfs.glob_file(commit=c, pattern=pattern))

    assert glob("**.2") == ["/dir1/file1.2"]
    assert glob("/dir1/*") == ["/dir1/file1.1", "/dir1/file1.2"]
    assert glob("/dir*") == ["/dir1/", "/dir2/"]
    assert glob("/") == ["/"]


def test_get_file_tar_glob_order(client: Client):
    """TestGetFileTARGlobOrder: GetFileTAR of a glob returns the matching files in
    lexicographic order."""
    client.pfs.create_repo(repo=repo("test"))
    data = {f"/data/{i:010d}": f"{4 * i},{4 * i + 1}\n".encode() for i in range(25)}
    c = commit_files(client, "test", dict(reversed(list(data.items()))))
    tar = client.pfs.pfs_tar_file(pfs.File(commit=c, path="/data/*"))
    assert b"".join(tar.extractfile(m).read() for m in tar if m.isfile()) == b"".join(data.values())


def test_walk_file_empty(client: Client):
    """TestWalkFileEmpty: walking an empty commit's root succeeds and returns nothing but
    ``/`` as a DIR (pachd's walkFile returns nothing: its directory inserter adds no root to
    an empty file set, and the NOT_FOUND of an empty walk is dropped for the root); walking a
    missing path fails NOT_FOUND; for the default head, an empty open commit and an empty
    finished commit."""
    client.pfs.create_repo(repo=repo("test"))
    client.pfs.create_branch(branch=branch("test"))

    def checks() -> None:
        for path in ("", "/"):
            walked = list(client.pfs.walk_file(file=pfs.File(commit=head("test"), path=path)))
            assert all((f.file.path, f.file_type) == ("/", pfs.FileType.DIR) for f in walked)
        for path in ("foo", "/foo", "foo/bar", "/foo/bar"):
            file = pfs.File(commit=head("test"), path=path)
            assert fails(lambda file=file: client.pfs.walk_file(file=file)).code() == (
                grpc.StatusCode.NOT_FOUND
            )

    checks()
    client.pfs.start_commit(branch=branch("test"))
    checks()
    client.pfs.finish_commit(commit=head("test"))
    checks()


def test_file_and_directory_at_one_path_is_an_error(client: Client):
    """TestWalkFileInvalid: when a child commit writes ``/a/a`` over the file ``/a``,
    InspectFile and WalkFile of ``/`` fail (a path cannot be both a file and a
    directory)."""
    client.pfs.create_repo(repo=repo("test"))
    commit_files(client, "test", {"/a": b""})
    c2 = client.pfs.start_commit(branch=branch("test"))
    put(client, c2, "/a/a", b"")
    fails(lambda: client.pfs.inspect_file(file=pfs.File(commit=c2, path="/")))
    fails(lambda: client.pfs.walk_file(file=pfs.File(commit=c2, path="/")))


def test_delete_repo_reports_deleted(client: Client):
    """TestDeleteRepo: DeleteRepo of an existing repo answers ``deleted`` true."""
    client.pfs.create_repo(repo=repo("data"))
    assert client.pfs.delete_repo(repo=repo("data")).deleted is True


def test_ancestry_dot_syntax(client: Client):
    """TestAncestrySyntax: ``master.1`` names the branch's first commit, ``master.2`` the
    second."""
    client.pfs.create_repo(repo=repo("test"))
    made = [commit_files(client, "test", {}).id for _ in range(3)]
    assert client.pfs.inspect_commit(commit=at("test", "master.1")).commit.id == made[0]
    assert client.pfs.inspect_commit(commit=at("test", "master.2")).commit.id == made[1]


@pytest.mark.xfail(
    strict=True,
    reason="pachd's DiffFile lists the root directory / (and changed parent directories) before "
    "the changed files; the local server lists only the changed files",
)
def test_diff_file_includes_the_root(client: Client):
    """TestDiffFile: DiffFile of a commit against its parent lists the root directory ``/``
    before the changed file, on each side that has it."""
    client.pfs.create_repo(repo=repo("test"))
    c1 = commit_files(client, "test", {"foo": b"foo\n"})
    paths = [
        d.new_file.file.path
        for d in client.pfs.diff_file(new_file=pfs.File(commit=c1, path="/"))
        if d.new_file
    ]
    assert paths == ["/", "/foo"]


def test_glob_star_leaves_out_the_root(client: Client):
    """TestGlobFile: ``*`` matches the top-level files and directories (not ``/``)."""
    client.pfs.create_repo(repo=repo("test"))
    c = commit_files(client, "test", {"file1": b"1", "d/f": b"2"})
    assert sorted(f.file.path for f in client.pfs.glob_file(commit=c, pattern="*")) == [
        "/d/",
        "/file1",
    ]


def test_get_file_tar_of_a_glob(client: Client):
    """TestGlobFile: GetFileTAR takes a glob; ``**file1?`` reaches files at every depth."""
    client.pfs.create_repo(repo=repo("test"))
    files = {f"{d}file1{i}": b"x" for d in ("", "dir1/", "dir2/dir3/") for i in range(10)}
    c = commit_files(client, "test", files)
    tar = client.pfs.pfs_tar_file(pfs.File(commit=c, path="**file1?"))
    assert sum(len(tar.extractfile(m).read()) for m in tar if m.isfile()) == 30
