"""What the store hands out and takes in: keys of repos and branches, rows of projects, repos,
branches and commits, the file changes a commit is filled with, and the targets of a metadata
edit."""

from __future__ import annotations

from dataclasses import dataclass, field

ORIGIN_USER = 1
ORIGIN_AUTO = 2


@dataclass(frozen=True)
class ProjectRow:
    name: str
    description: str
    created: float
    metadata: dict[str, str]


@dataclass(frozen=True)
class RepoKey:
    project: str
    name: str

    def __str__(self) -> str:
        return f"{self.project}/{self.name}"


@dataclass(frozen=True)
class BranchKey:
    repo: RepoKey
    name: str

    def __str__(self) -> str:
        return f"{self.repo}@{self.name}"


@dataclass
class RepoRow:
    key: RepoKey
    rid: int
    description: str
    created: float
    metadata: dict[str, str]
    branches: list[str] = field(default_factory=list)
    size_bytes: int = 0


@dataclass
class BranchRow:
    key: BranchKey
    head: str | None
    provenance: list[BranchKey]
    direct_provenance: list[BranchKey]
    subvenance: list[BranchKey]
    created: float
    updated: float
    metadata: dict[str, str]


@dataclass(kw_only=True)
class CommitRow:
    repo: RepoKey
    cid: int
    id: str
    branch: str | None
    origin: int
    description: str
    parent: str | None
    children: list[str] = field(default_factory=list)
    started: float
    finishing: float | None
    finished: float | None
    error: str
    size_bytes: int
    direct_provenance: list[tuple[RepoKey, str, str | None]] = field(default_factory=list)
    direct_subvenance: list[tuple[RepoKey, str, str | None]] = field(default_factory=list)
    metadata: dict[str, str]

    def __str__(self) -> str:
        return f"{self.repo}@{self.id}"


@dataclass
class FileChange:
    """One change to apply to a commit's tree, in order."""

    kind: str  # "put" or "delete"
    path: str
    blob: str | None = None
    size: int = 0


@dataclass(frozen=True)
class ProjectTarget:
    """A project's metadata."""

    name: str


@dataclass(frozen=True)
class RepoTarget:
    """A repo's metadata."""

    repo: RepoKey


@dataclass(frozen=True)
class BranchTarget:
    """A branch's metadata."""

    branch: BranchKey


@dataclass(frozen=True)
class CommitTarget:
    """The metadata of the commit ``id`` of ``repo``, or of the head of ``branch`` (either with
    pachd's ancestry syntax)."""

    repo: RepoKey
    id: str | None = None
    branch: str | None = None


MetadataTarget = ProjectTarget | RepoTarget | BranchTarget | CommitTarget
