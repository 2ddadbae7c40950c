"""The run-time protobuf classes are byte-compatible with pachyderm_sdk's betterproto ones."""

from datetime import UTC, datetime

from pachyderm_sdk.api import metadata, pfs

from kfp_pachyderm.codec.fastproto import fast_class, to_datetime

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def commit(repo: str, id_: str) -> pfs.Commit:
    return pfs.Commit(repo=pfs.Repo(name=repo, type="user", project=pfs.Project(name="p")), id=id_)


def test_commit_info_round_trips_both_ways():
    slow = pfs.CommitInfo(
        commit=commit("r", "a" * 32),
        origin=pfs.CommitOrigin(kind=pfs.OriginKind.AUTO),
        description="d",
        parent_commit=commit("r", "b" * 32),
        started=NOW,
        finished=NOW,
        direct_provenance=[commit("q", "c" * 32), commit("s", "d" * 32)],
        details=pfs.CommitInfoDetails(size_bytes=123),
        metadata={"k": "v", "x": "y"},
        error="boom",
    )
    fast = fast_class(pfs.CommitInfo).FromString(bytes(slow))
    assert fast.commit.repo.project.name == "p" and fast.origin.kind == pfs.OriginKind.AUTO
    assert [c.repo.name for c in fast.direct_provenance] == ["q", "s"]
    assert dict(fast.metadata) == {"k": "v", "x": "y"} and fast.details.size_bytes == 123
    assert to_datetime(fast.started) == NOW and to_datetime(fast.finishing) is None
    assert pfs.CommitInfo.FromString(fast.SerializeToString()) == slow


def test_oneofs_wrappers_and_other_modules():
    slow = pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/a", raw=b"bytes"))
    fast = fast_class(pfs.ModifyFileRequest).FromString(bytes(slow))
    assert fast.add_file.raw.value == b"bytes"
    edit = metadata.EditMetadataRequest(
        edits=[
            metadata.Edit(
                repo=pfs.Repo(name="r").as_picker(), add_key=metadata.EditAddKey(key="k", value="v")
            )
        ]
    )
    fast_edit = fast_class(metadata.EditMetadataRequest).FromString(bytes(edit))
    assert fast_edit.edits[0].add_key.key == "k"
    assert metadata.EditMetadataRequest.FromString(fast_edit.SerializeToString()) == edit
