"""Commit references: one parser and one formatter for every way users name Pachyderm data.

Accepted forms (pachctl syntax, the SDK's URI syntax and this library's artifact URIs)::

    repo                      the repo (its master branch where a commit is needed)
    repo@branch               the head of a branch
    repo@commitid             a commit by global ID (32 hex characters, a uuid4)
    repo@branch=commitid      a commit, remembering the branch it was made on
    project/repo@...          any of the above in a project other than ``default``
    ...:/path                 a path inside the commit
    pfs://project/repo@...    the URI form used in artifacts

Example:
    >>> ref = CommitRef.parse("images@master:/train")
    >>> ref.repo, ref.branch, ref.path
    ('images', 'master', '/train')
    >>> str(ref.at("0123456789ab4def0123456789abcdef"))
    'images@master=0123456789ab4def0123456789abcdef:/train'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pachyderm_sdk.api import pfs

from kfp_pachyderm.codec.names import (
    COMMIT_ID_RE,
    COMMIT_ID_RULE,
    DEFAULT_BRANCH,
    DEFAULT_PROJECT,
    NAME_RE,
    normalize_path,
)
from kfp_pachyderm.errors import InvalidReferenceError

URI_SCHEME = "pfs://"

_NAME_RULE = "letters, digits, '_' and '-' only"


def check_pfs_name(kind: str, value: str, text: str | None = None) -> str:
    """Return ``value`` if it is a valid Pachyderm name, else raise naming it and the rule."""
    if not NAME_RE.match(value or ""):
        where = f" in {text!r}" if text is not None and text != value else ""
        raise InvalidReferenceError(f"invalid {kind} name {value!r}{where}: use {_NAME_RULE}")
    return value


def is_commit_id(value: str) -> bool:
    """Whether ``value`` has the shape of a Pachyderm global commit ID."""
    return bool(COMMIT_ID_RE.match(value))


@dataclass(frozen=True)
class CommitRef:
    """A repo, branch, commit and path in Pachyderm; any of branch, commit and path may be unset.

    Attributes:
        repo: repo name.
        branch: branch name, or None.
        commit: global commit ID, or None.
        path: absolute path inside the commit, or None for the whole commit.
        project: project name; ``default`` unless given.
    """

    repo: str
    branch: str | None = None
    commit: str | None = None
    path: str | None = None
    project: str = DEFAULT_PROJECT

    def __post_init__(self) -> None:
        check_pfs_name("repo", self.repo)
        check_pfs_name("project", self.project)
        if self.branch is not None:
            check_pfs_name("branch", self.branch)
        if self.commit is not None and not is_commit_id(self.commit):
            raise InvalidReferenceError(f"invalid commit ID {self.commit!r}: {COMMIT_ID_RULE}")
        if self.path is not None:
            object.__setattr__(self, "path", normalize_path(self.path))

    @classmethod
    def parse(cls, text: str) -> CommitRef:
        """Parse any accepted form; raise InvalidReferenceError naming the bad part."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidReferenceError(
                f"empty commit reference {text!r}: expected repo[@branch|@commit][:/path]"
            )
        body = text.strip()
        if body.startswith(URI_SCHEME):
            body = body[len(URI_SCHEME) :]
        elif "://" in body:
            scheme = body.split("://", 1)[0]
            raise InvalidReferenceError(
                f"unsupported scheme {scheme!r} in {text!r}: use pfs:// or no scheme"
            )
        path = None
        if ":" in body:
            body, path = body.split(":", 1)
            if not path:
                raise InvalidReferenceError(f"empty path after ':' in {text!r}")
        repo_part, at, version = body.partition("@")
        if at and not version:
            raise InvalidReferenceError(f"nothing after '@' in {text!r}: add a branch or commit ID")
        project = DEFAULT_PROJECT
        if "/" in repo_part:
            project, repo_part = repo_part.split("/", 1)
            check_pfs_name("project", project, text)
        check_pfs_name("repo", repo_part, text)
        branch = commit = None
        if "=" in version:
            branch, commit = version.split("=", 1)
            check_pfs_name("branch", branch, text)
            if not is_commit_id(commit):
                raise InvalidReferenceError(
                    f"invalid commit ID {commit!r} in {text!r}: {COMMIT_ID_RULE}"
                )
        elif version:
            if is_commit_id(version):
                commit = version
            else:
                check_pfs_name("branch or commit ID", version, text)
                branch = version
        return cls(repo=repo_part, branch=branch, commit=commit, path=path, project=project)

    def __str__(self) -> str:
        out = self.repo if self.project == DEFAULT_PROJECT else f"{self.project}/{self.repo}"
        if self.branch and self.commit:
            out += f"@{self.branch}={self.commit}"
        elif self.branch or self.commit:
            out += f"@{self.branch or self.commit}"
        if self.path is not None:
            out += f":{self.path}"
        return out

    @property
    def uri(self) -> str:
        """``pfs://project/repo@commit[:/path]``, the form artifacts carry."""
        if not self.commit:
            raise InvalidReferenceError(f"{self} names no commit ID; a pfs:// URI needs one")
        out = f"{URI_SCHEME}{self.project}/{self.repo}@{self.commit}"
        return out if self.path is None else f"{out}:{self.path}"

    def at(self, commit: str) -> CommitRef:
        """The same reference pinned to ``commit``."""
        return replace(self, commit=commit)

    def on(self, branch: str) -> CommitRef:
        """The same reference on ``branch``."""
        return replace(self, branch=branch)

    def branch_ref(self) -> CommitRef:
        """The branch itself: no commit, no path, master when no branch is set."""
        return replace(self, branch=self.branch or DEFAULT_BRANCH, commit=None, path=None)

    def with_path(self, path: str | None) -> CommitRef:
        """The same reference with ``path``."""
        return replace(self, path=path)

    def pfs_repo(self) -> pfs.Repo:
        """The SDK's Repo message."""
        return pfs.Repo(name=self.repo, type="user", project=pfs.Project(name=self.project))

    def pfs_branch(self) -> pfs.Branch:
        """The SDK's Branch message (master when no branch is set)."""
        return pfs.Branch(repo=self.pfs_repo(), name=self.branch or DEFAULT_BRANCH)

    def pfs_commit(self) -> pfs.Commit:
        """The SDK's Commit message: the commit ID if set, else the branch head."""
        if self.commit:
            return pfs.Commit(repo=self.pfs_repo(), id=self.commit)
        return pfs.Commit(repo=self.pfs_repo(), branch=self.pfs_branch())

    def pfs_file(self) -> pfs.File:
        """The SDK's File message (path ``/`` when none is set)."""
        return pfs.File(commit=self.pfs_commit(), path=self.path or "/")
