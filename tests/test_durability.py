"""A SIGKILL of the real server process at any moment loses no finished commit."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import read_tree

from .conftest import ready_client


def make_tree(root: Path, files: int = 50, size: int = 10_000) -> Path:
    for i in range(files):
        path = root / f"d{i % 5}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def test_commit_survives_sigkill_and_restart(tmp_path: Path, server_process):
    source = make_tree(tmp_path / "src")
    server = server_process()
    client = Client.from_pachd_address(server.address)
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as commit:
        commit.put_files(source=source, path="/")
    server.kill()

    restarted = server_process(data_dir=server.data_dir, port=server.port)
    client = ready_client(restarted.address)
    info = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    assert info.details.size_bytes == 50 * 10_000
    read_tree(client, CommitRef("data", commit=commit.id), tmp_path / "back")
    assert same_tree(source, tmp_path / "back")


def test_kill_during_writes_keeps_every_finished_commit(tmp_path: Path, server_process):
    server = server_process()
    client = Client.from_pachd_address(server.address)
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    finished: list[tuple[str, bytes]] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            payload = os.urandom(50_000 + i)
            try:
                with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as c:
                    c.put_file_from_bytes(f"/f{i}", payload)
            except (grpc.RpcError, ConnectionError):
                return
            finished.append((c.id, payload))
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 20
    while len(finished) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    thread.join(timeout=30)
    assert len(finished) >= 15

    restarted = server_process(data_dir=server.data_dir, port=server.port)
    client = ready_client(restarted.address)
    for i, (commit_id, payload) in enumerate(finished):
        commit = pfs.Commit(repo=pfs.Repo(name="data"), id=commit_id)
        assert client.pfs.inspect_commit(commit=commit).finished.year > 1970
        with client.pfs.pfs_file(pfs.File(commit=commit, path=f"/f{i}")) as f:
            assert f.read() == payload
    # The store is readable end to end: every commit, finished or not, lists its files.
    for info in client.pfs.list_commit(repo=pfs.Repo(name="data")):
        list(client.pfs.walk_file(file=pfs.File(commit=info.commit, path="/")))
