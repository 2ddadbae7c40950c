"""The local server's pachd semantics, exercised through the real pachyderm_sdk over gRPC."""

from __future__ import annotations

import logging
import re
import threading
import uuid

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import metadata, pfs

from kfp_pachyderm.codec.wire import encode_add_file_raw
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.transfer import BytesChannel

UUID4_HEX = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{19}$")


def repo(name: str) -> pfs.Repo:
    return pfs.Repo(name=name)


def branch(repo_name: str, name: str = "master") -> pfs.Branch:
    return pfs.Branch(repo=repo(repo_name), name=name)


def read(client: Client, commit: pfs.Commit, path: str) -> bytes:
    with client.pfs.pfs_file(pfs.File(commit=commit, path=path)) as f:
        return f.read()


def code_of(excinfo) -> grpc.StatusCode:
    return excinfo.value.code()


def test_commit_ids_are_uuid4_hex_and_children_inherit_files(client: Client):
    client.pfs.create_repo(repo=repo("data"))
    with client.pfs.commit(branch=branch("data")) as first:
        first.put_file_from_bytes("/a.txt", b"A")
        first.put_file_from_bytes("/dir/b.txt", b"B")
    with client.pfs.commit(branch=branch("data")) as second:
        second.put_file_from_bytes("/c.txt", b"C")
        second.delete_file(path="/dir")
    assert UUID4_HEX.match(first.id) and UUID4_HEX.match(second.id) and first.id != second.id
    assert read(client, second, "/a.txt") == b"A"
    assert read(client, second, "/c.txt") == b"C"
    assert not client.pfs.path_exists(pfs.File(commit=second, path="/dir/b.txt"))
    assert read(client, first, "/dir/b.txt") == b"B"
    info = client.pfs.inspect_commit(commit=second)
    assert info.parent_commit.id == first.id
    assert info.details.size_bytes == 2


def test_branch_provenance_opens_same_id_commits_downstream_transitively(client: Client):
    for name in ("raw", "clean", "model"):
        client.pfs.create_repo(repo=repo(name))
    client.pfs.create_branch(branch=branch("raw"))
    client.pfs.create_branch(branch=branch("clean"), provenance=[branch("raw")])
    client.pfs.create_branch(branch=branch("model"), provenance=[branch("clean")])

    with client.pfs.commit(branch=branch("raw")) as c:
        c.put_file_from_bytes("/x", b"1")
    clean = client.pfs.inspect_commit(commit=pfs.Commit(repo=repo("clean"), id=c.id))
    model = client.pfs.inspect_commit(commit=pfs.Commit(repo=repo("model"), id=c.id))
    assert clean.origin.kind == pfs.OriginKind.AUTO
    assert [(p.repo.name, p.id) for p in clean.direct_provenance] == [("raw", c.id)]
    assert [(p.repo.name, p.id) for p in model.direct_provenance] == [("clean", c.id)]
    assert client.pfs.inspect_branch(branch=branch("model")).head.id == c.id
    assert {
        i.commit.repo.name for i in client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=c.id))
    } == {"raw", "clean", "model"}

    # Downstream commits stay open until the steps that own them finish them.
    waiter = threading.Thread(target=lambda: client.pfs.wait_commit_set(pfs.CommitSet(id=c.id)))
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive()
    for name in ("clean", "model"):
        client.pfs.put_file_from_bytes(
            commit=pfs.Commit(repo=repo(name), id=c.id), path="/out", data=name.encode()
        )
        client.pfs.finish_commit(commit=pfs.Commit(repo=repo(name), id=c.id))
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    branch_info = client.pfs.inspect_branch(branch=branch("model"))
    assert [b.name + "@" + b.repo.name for b in branch_info.provenance] == [
        "master@clean",
        "master@raw",
    ]


def test_finished_commits_are_immutable_and_branch_writes_make_one_off_commits(client: Client):
    client.pfs.create_repo(repo=repo("data"))
    with client.pfs.commit(branch=branch("data")) as c:
        c.put_file_from_bytes("/a", b"1")
    with pytest.raises(grpc.RpcError) as err:
        client.pfs.put_file_from_bytes(
            commit=pfs.Commit(repo=repo("data"), id=c.id), path="/b", data=b"2"
        )
    assert code_of(err) == grpc.StatusCode.FAILED_PRECONDITION
    assert "has already finished" in err.value.details()

    head = pfs.Commit(repo=repo("data"), branch=branch("data"))
    client.pfs.put_file_from_bytes(commit=head, path="/b", data=b"2")
    info = client.pfs.inspect_commit(commit=head)
    assert info.commit.id != c.id and info.parent_commit.id == c.id
    assert info.finished.year > 1970
    assert read(client, info.commit, "/a") == b"1" and read(client, info.commit, "/b") == b"2"
    assert len(list(client.pfs.list_commit(repo=repo("data")))) == 2


def test_error_codes_and_messages_name_the_value(client: Client):
    client.pfs.create_repo(repo=repo("data"))
    cases = [
        (
            lambda: client.pfs.inspect_repo(repo=repo("nope")),
            grpc.StatusCode.NOT_FOUND,
            "repo default/nope not found",
        ),
        (
            lambda: client.pfs.create_repo(repo=repo("data")),
            grpc.StatusCode.ALREADY_EXISTS,
            "repo default/data already exists",
        ),
        (
            lambda: client.pfs.create_repo(repo=repo("bad.name")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "'bad.name' is invalid",
        ),
        (
            lambda: client.pfs.inspect_branch(branch=branch("data", "dev")),
            grpc.StatusCode.NOT_FOUND,
            "branch dev not found in repo default/data",
        ),
        (
            lambda: client.pfs.inspect_commit(
                commit=pfs.Commit(repo=repo("data"), id=uuid.uuid4().hex)
            ),
            grpc.StatusCode.NOT_FOUND,
            "commit default/data@",
        ),
        (
            lambda: client.pfs.inspect_commit(commit=pfs.Commit(repo=repo("data"), id="zz!")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "'zz!' is invalid",
        ),
        (
            lambda: client.pfs.inspect_project(project=pfs.Project(name="ghost")),
            grpc.StatusCode.NOT_FOUND,
            "project ghost not found",
        ),
    ]
    for call, code, text in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert code_of(err) == code, text
        assert text in err.value.details()
    assert not client.pfs.repo_exists(repo("nope"))
    assert not client.pfs.branch_exists(branch("data", "dev"))
    with client.pfs.commit(branch=branch("data")) as c:
        pass
    with pytest.raises(ValueError):  # the SDK's PFSFile turns the NOT_FOUND into ValueError
        client.pfs.pfs_file(pfs.File(commit=c, path="/missing"))


def test_unsupported_rpcs_answer_unimplemented_naming_the_method(client: Client):
    with pytest.raises(grpc.RpcError) as err:
        list(client.pps.list_pipeline())
    assert code_of(err) == grpc.StatusCode.UNIMPLEMENTED
    assert "/pps_v2.API/ListPipeline" in err.value.details()


@pytest.mark.slow
def test_messages_up_to_64_mib(client: Client, server: LocalPachyderm):
    client.pfs.create_repo(repo=repo("big"))
    payload = bytes(range(256)) * (64 * 4096 - 64)  # just under 64 MiB in one message
    with client.pfs.commit(branch=branch("big")) as c:
        with BytesChannel(client) as channel:
            channel.modify_file(
                [bytes(pfs.ModifyFileRequest(set_commit=c)), encode_add_file_raw("/one", payload)]
            )
        c.put_file_from_bytes("/sdk", payload)  # the SDK's own 19 MiB chunks
    assert read(client, c, "/one") == payload
    assert read(client, c, "/sdk") == payload


def test_token_is_checked_and_never_logged(tmp_path, caplog):
    token = "s3cr3t-token-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    with LocalPachyderm(tmp_path / "pfs", token=token) as server:
        assert Client.from_pachd_address(server.address, auth_token="").get_version().minor == 12
        for bad in (None, "wrong"):
            c = Client.from_pachd_address(server.address, auth_token=bad)
            with pytest.raises(grpc.RpcError) as err:
                c.pfs.create_repo(repo=repo("data"))
            assert code_of(err) == grpc.StatusCode.UNAUTHENTICATED
            assert token not in err.value.details()
        good = Client.from_pachd_address(server.address, auth_token=token)
        good.pfs.create_repo(repo=repo("data"))
        assert good.pfs.repo_exists(repo("data"))
    assert token not in caplog.text


def test_concurrent_writers_lose_nothing(client: Client, server: LocalPachyderm):
    client.pfs.create_repo(repo=repo("shared"))
    errors: list[BaseException] = []

    def own_branch(n: int) -> None:
        c = Client.from_pachd_address(server.address)
        try:
            for i in range(10):
                with c.pfs.commit(branch=branch("shared", f"b{n}")) as commit:
                    commit.put_file_from_bytes(f"/f{i}", f"{n}-{i}".encode())
        except BaseException as err:  # surfaced below
            errors.append(err)

    def same_branch(n: int) -> None:
        c = Client.from_pachd_address(server.address)
        try:
            for i in range(10):
                head = pfs.Commit(repo=repo("shared"), branch=branch("shared", "common"))
                c.pfs.put_file_from_bytes(commit=head, path=f"/w{n}-{i}", data=b"x")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=own_branch, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=same_branch, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for n in range(4):
        head = pfs.Commit(repo=repo("shared"), branch=branch("shared", f"b{n}"))
        assert read(client, head, "/f9") == f"{n}-9".encode()
        assert len(list(client.pfs.list_file(file=pfs.File(commit=head, path="/")))) == 10
    common = pfs.Commit(repo=repo("shared"), branch=branch("shared", "common"))
    names = {f.file.path for f in client.pfs.list_file(file=pfs.File(commit=common, path="/"))}
    assert names == {f"/w{n}-{i}" for n in range(4) for i in range(10)}
    assert len(list(client.pfs.list_commit(repo=repo("shared")))) == 40 + 40


def test_commit_metadata_edits(client: Client):
    client.pfs.create_repo(repo=repo("data"))
    with client.pfs.commit(branch=branch("data")) as c:
        pass
    picker = pfs.CommitPicker(
        id=pfs.CommitPickerCommitByGlobalId(repo=repo("data").as_picker(), id=c.id)
    )
    client.metadata.edit_metadata(
        edits=[metadata.Edit(commit=picker, add_key=metadata.EditAddKey(key="k", value="v"))]
    )
    assert client.pfs.inspect_commit(commit=c).metadata == {"k": "v"}
    with pytest.raises(grpc.RpcError) as err:
        client.metadata.edit_metadata(
            edits=[metadata.Edit(commit=picker, add_key=metadata.EditAddKey(key="k", value="w"))]
        )
    assert code_of(err) == grpc.StatusCode.FAILED_PRECONDITION
    client.metadata.edit_metadata(
        edits=[metadata.Edit(commit=picker, edit_key=metadata.EditEditKey(key="k", value="w"))]
    )
    client.metadata.edit_metadata(
        edits=[metadata.Edit(commit=picker, delete_key=metadata.EditDeleteKey(key="nope"))]
    )
    assert client.pfs.inspect_commit(commit=c).metadata == {"k": "w"}


def test_subscribe_commit_streams_new_commits(client: Client):
    client.pfs.create_repo(repo=repo("data"))
    client.pfs.create_branch(branch=branch("data"))
    stream = client.pfs.subscribe_commit(
        repo=repo("data"), branch="master", state=pfs.CommitState.FINISHED
    )
    first = next(stream)
    assert first.origin.kind == pfs.OriginKind.AUTO
    made = []

    def commit_later():
        with client.pfs.commit(branch=branch("data")) as c:
            c.put_file_from_bytes("/a", b"1")
        made.append(c.id)

    t = threading.Thread(target=commit_later)
    t.start()
    got = next(stream)
    t.join()
    assert got.commit.id == made[0]
    stream.close()


def test_get_file_tar_and_walk_order(client: Client):
    client.pfs.create_repo(repo=repo("data"))
    with client.pfs.commit(branch=branch("data")) as c:
        for path in ("/a/b/file3.dat", "/a/file2.dat", "/top.dat"):
            c.put_file_from_bytes(path, path.encode())
    walked = [f.file.path for f in client.pfs.walk_file(file=pfs.File(commit=c, path="/a"))]
    assert walked == ["/a/", "/a/b/", "/a/b/file3.dat", "/a/file2.dat"]
    tar = client.pfs.pfs_tar_file(pfs.File(commit=c, path="/"))
    files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert files == {
        p.lstrip("/"): p.encode() for p in ("/a/b/file3.dat", "/a/file2.dat", "/top.dat")
    }
    globbed = [f.file.path for f in client.pfs.glob_file(commit=c, pattern="/a/*")]
    assert globbed == ["/a/b/", "/a/file2.dat"]
