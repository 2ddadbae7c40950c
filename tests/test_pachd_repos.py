"""An audit of the local server against behaviours pachd 2.12's own server tests state:
repos and projects (CreateRepo, ListRepo, DeleteRepo, InspectRepo, projects).

How the audit works (the Go test each test follows, xfail for a difference): see
``tests/pachd_audit_helpers.py``.
"""

from __future__ import annotations

import threading
import uuid

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from .pachd_audit_helpers import (
    branch,
    commit_files,
    fails,
    repo,
)


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


def test_delete_repo_reports_deleted(client: Client):
    """TestDeleteRepo: DeleteRepo of an existing repo answers ``deleted`` true."""
    client.pfs.create_repo(repo=repo("data"))
    assert client.pfs.delete_repo(repo=repo("data")).deleted is True
