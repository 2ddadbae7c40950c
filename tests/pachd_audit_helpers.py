"""The local server's PFS helpers for the audit against pachd 2.12's server tests
(tests/test_pachd_*.py): pfs message builders and small read/write/error helpers over the real
``pachyderm_sdk`` client.

Each test names the Go test it follows in ``src/server/pfs/server/testing/server_test.go``
(github.com/pachyderm/pachyderm, branch 2.12.x), or, where no server test states the
behaviour, the server code; the facts its assertions state are checked
here through the real ``pachyderm_sdk`` client against the real local server. Where the local
server differs, the test is an ``xfail(strict=True)`` whose reason says what pachd does and what
the local server does; README.md's "Audit against pachd 2.12's server tests" lists them all.
"""

from __future__ import annotations

from collections.abc import Callable

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
