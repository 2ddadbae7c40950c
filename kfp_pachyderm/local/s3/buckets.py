"""Bucket names <-> Pachyderm branches and commits, and object keys <-> file paths.

A bucket is pachd's ``[<commitID>.][<branch>.]<repo>[.<project>]``; an object key is a file path
without its leading slash.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp_pachyderm.codec.names import (
    COMMIT_ID_RE,
    DEFAULT_BRANCH,
    DEFAULT_PROJECT,
    NAME_RE,
    normalize_path,
)
from kfp_pachyderm.errors import InvalidReferenceError
from kfp_pachyderm.local.s3.errors import S3Error
from kfp_pachyderm.local.store.pfs_store import Store
from kfp_pachyderm.local.store.records import BranchKey, RepoKey


@dataclass(frozen=True)
class Bucket:
    """A bucket name resolved to the branch it names and, optionally, one commit on it."""

    name: str
    branch: BranchKey
    commit: str | None

    @property
    def repo(self) -> RepoKey:
        """The repo of the bucket's branch."""
        return self.branch.repo

    @classmethod
    def parse(cls, name: str) -> Bucket:
        """Read pachd's ``[<commitID>.][<branch>.]<repo>[.<project>]``; raise InvalidBucketName."""
        parts = name.split(".")
        commit = parts.pop(0) if COMMIT_ID_RE.match(parts[0]) else None
        if len(parts) == 1:
            project, branch, repo = DEFAULT_PROJECT, DEFAULT_BRANCH, parts[0]
        elif len(parts) == 2:
            project, (branch, repo) = DEFAULT_PROJECT, parts
        elif len(parts) == 3:
            branch, repo, project = parts
        else:
            raise bad_bucket(name, "it has too many or too few '.'-separated parts")
        for kind, value in (("branch", branch), ("repo", repo), ("project", project)):
            if not NAME_RE.match(value):
                raise bad_bucket(name, f"its {kind} name {value!r} is not a valid name")
        return cls(name, BranchKey(RepoKey(project, repo), branch), commit)


def bad_bucket(name: str, why: str) -> S3Error:
    return S3Error(
        "InvalidBucketName",
        f"bucket name {name!r} is invalid: {why}; expected [<commitID>.][<branch>.]<repo>"
        "[.<project>] (a bare <repo> is its master branch in project default; with a project "
        "the branch is required) with names of letters, digits, '_' and '-'",
        BucketName=name,
    )


def branch_bucket(branch: BranchKey) -> str:
    name = f"{branch.name}.{branch.repo.name}"
    return name if branch.repo.project == DEFAULT_PROJECT else f"{name}.{branch.repo.project}"


def bucket_names(store: Store) -> list[tuple[str, float]]:
    """(``branch.repo.project``, repo creation time) of every branch, as pachd's ListBuckets."""
    out = []
    for repo in store.list_repos():
        for branch in repo.branches:
            out.append((f"{branch}.{repo.key.name}.{repo.key.project}", repo.created))
    return sorted(out)


def key_path(key: str) -> str | None:
    """The PFS path of object ``key``, or None when no file can have that key.

    One trailing ``/`` is dropped first, as pachd's gateway drops it (``strings.TrimSuffix(file,
    "/")`` in GetObject, PutObject, CopyObject and DeleteObject, ``src/server/pfs/s3/
    object.go``; multipart's CopyFile cleans it away): the S3 folder marker ``dir/`` is the
    file ``/dir``, and lists as ``dir``."""
    path = "/" + key.removesuffix("/")
    try:
        return path if normalize_path(path) == path and path != "/" else None
    except InvalidReferenceError:
        return None
