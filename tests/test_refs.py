"""Commit references: one parser, one formatter, round trips, and clear errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import InvalidReferenceError
from kfp_pachyderm.pfs.refs import CommitRef

ID = "0123456789ab4def0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images", CommitRef("images")),
        ("images@master", CommitRef("images", branch="master")),
        (f"images@{ID}", CommitRef("images", commit=ID)),
        (f"images@master={ID}", CommitRef("images", branch="master", commit=ID)),
        ("images@master:/a/b.png", CommitRef("images", branch="master", path="/a/b.png")),
        (
            "proj/images@dev:train/",
            CommitRef("images", branch="dev", path="/train", project="proj"),
        ),
        (f"pfs://default/images@{ID}:/x", CommitRef("images", commit=ID, path="/x")),
    ],
)
def test_parse_reads_repo_branch_commit_path_and_project(text, expected):
    assert CommitRef.parse(text) == expected


names = st.from_regex(r"[a-zA-Z0-9_-]{1,20}", fullmatch=True)
ids = st.from_regex(r"[0-9a-f]{12}4[0-9a-f]{19}", fullmatch=True)
segments = st.lists(st.from_regex(r"[a-zA-Z0-9_.-]{1,10}", fullmatch=True), max_size=4)


@given(
    repo=names,
    project=names,
    branch=st.none() | names,
    commit=st.none() | ids,
    path=st.none() | segments.map(lambda parts: "/" + "/".join(parts)),
)
def test_any_reference_round_trips_through_its_text_and_uri(repo, project, branch, commit, path):
    if branch is not None and len(branch) == 32:
        branch = None
    if path is not None and ".." in path.split("/"):
        path = None
    ref = CommitRef(repo, branch=branch, commit=commit, path=path, project=project)
    assert CommitRef.parse(str(ref)) == ref
    if commit:
        assert CommitRef.parse(ref.uri) == ref.__class__(
            repo, commit=commit, path=ref.path, project=project
        )


def test_round_trip_through_the_sdks_uri_syntax():
    ref = CommitRef.parse(f"proj/images@master={ID}")
    commit = pfs.Commit.from_uri(str(ref))
    assert (commit.repo.project.name, commit.repo.name, commit.branch.name, commit.id) == (
        "proj",
        "images",
        "master",
        ID,
    )
    assert CommitRef.parse(commit.as_uri()) == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty commit reference"),
        ("im ages@master", "invalid repo name 'im ages'"),
        ("images@ma.ster", "invalid branch or commit ID name 'ma.ster'"),
        ("images@master=123", "invalid commit ID '123'"),
        ("images@master=" + "a" * 32, "the 13th being 4"),
        ("images@", "nothing after '@'"),
        ("s3://bucket/key", "unsupported scheme 's3'"),
        ("images@master:/a/../b", "'..' is not allowed"),
        ("images@master:", "empty path"),
        ("bad proj/images", "invalid project name 'bad proj'"),
    ],
)
def test_bad_references_name_the_bad_part(text, message):
    with pytest.raises(InvalidReferenceError, match=message.replace(".", r"\.").replace("'", "'")):
        CommitRef.parse(text)


def test_uri_needs_a_commit():
    with pytest.raises(InvalidReferenceError, match="names no commit ID"):
        _ = CommitRef.parse("images@master").uri


def test_a_reference_builds_the_sdk_file_and_commit_messages():
    ref = CommitRef.parse(f"p/images@{ID}:/a")
    assert ref.pfs_file().path == "/a"
    assert ref.pfs_commit().id == ID
    assert CommitRef.parse("images").pfs_commit().branch.name == "master"
