"""The local Pachyderm server's state: projects, repos, branches, commits and file trees.

Metadata lives in SQLite (WAL journal, one short transaction per change), file contents in a
:class:`~kfp_pachyderm.local.blobs.BlobStore`. Every method is safe to call from many threads:
the database is guarded by one lock, and ``changed`` (a condition on that lock) wakes callers
that wait for a commit to finish.

Semantics follow pachd 2.x for what is supported: global commit IDs (uuid4 hex) shared by the
commits of a commit set; branch provenance that opens a same-ID commit on every downstream branch;
child commits inheriting their parent's files; finished commits being immutable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kfp_pachyderm.errors import InvalidReferenceError
from kfp_pachyderm.local.blobs import BlobStore
from kfp_pachyderm.pfs.refs import (
    COMMIT_ID_RE,
    COMMIT_ID_RULE,
    DEFAULT_PROJECT,
    NAME_RE,
    normalize_path,
)

ORIGIN_USER = 1
ORIGIN_AUTO = 2


class StoreError(Exception):
    """A request the store refuses; ``code`` is the gRPC status name pachd would use."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> StoreError:
    return StoreError("NOT_FOUND", message)


def invalid(message: str) -> StoreError:
    return StoreError("INVALID_ARGUMENT", message)


def precondition(message: str) -> StoreError:
    return StoreError("FAILED_PRECONDITION", message)


def already_finished(commit: object) -> StoreError:
    """The error for a write to, or second finish of, a finished commit (pachd's wording)."""
    return precondition(f"commit {commit} has already finished")


def check_name(kind: str, name: str) -> None:
    """Apply pachd's naming rule to a project, repo or branch name."""
    if not name or not NAME_RE.match(name):
        raise invalid(
            f"{kind} name {name!r} is invalid: only alphanumeric characters, underscores, "
            "and dashes are allowed"
        )


def clean_path(path: str) -> str:
    """Normalise a PFS path the way pachd does: absolute, no duplicate or trailing slashes."""
    try:
        return normalize_path(path or "")
    except InvalidReferenceError as err:
        raise invalid(str(err)) from err


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


@dataclass
class CommitRow:
    repo: RepoKey
    cid: int
    id: str
    branch: str | None
    origin: int
    description: str
    parent: str | None
    children: list[str]
    started: float
    finishing: float | None
    finished: float | None
    error: str
    size_bytes: int
    direct_provenance: list[tuple[RepoKey, str, str | None]]
    direct_subvenance: list[tuple[RepoKey, str, str | None]]
    metadata: dict[str, str]

    def __str__(self) -> str:
        return f"{self.repo}@{self.id}"


@dataclass
class FileRow:
    path: str
    is_dir: bool
    blob: str | None
    size: int


@dataclass
class FileChange:
    """One change to apply to a commit's tree, in order."""

    kind: str  # "put" or "delete"
    path: str
    blob: str | None = None
    size: int = 0


SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    name TEXT PRIMARY KEY, description TEXT NOT NULL, created REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS repos (
    rid INTEGER PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL, created REAL NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (project, name));
CREATE TABLE IF NOT EXISTS branches (
    rid INTEGER NOT NULL, name TEXT NOT NULL, head TEXT, created REAL NOT NULL,
    updated REAL NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (rid, name));
CREATE TABLE IF NOT EXISTS branch_provenance (
    rid INTEGER NOT NULL, branch TEXT NOT NULL, up_rid INTEGER NOT NULL, up_branch TEXT NOT NULL,
    PRIMARY KEY (rid, branch, up_rid, up_branch));
CREATE TABLE IF NOT EXISTS commits (
    cid INTEGER PRIMARY KEY, rid INTEGER NOT NULL, id TEXT NOT NULL, branch TEXT,
    origin INTEGER NOT NULL, description TEXT NOT NULL, parent TEXT, started REAL NOT NULL,
    finishing REAL, finished REAL, error TEXT NOT NULL DEFAULT '',
    size_bytes INTEGER NOT NULL DEFAULT 0, metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (rid, id));
CREATE INDEX IF NOT EXISTS commits_by_id ON commits (id);
CREATE INDEX IF NOT EXISTS commits_by_parent ON commits (parent);
CREATE TABLE IF NOT EXISTS commit_provenance (
    cid INTEGER NOT NULL, up_cid INTEGER NOT NULL, PRIMARY KEY (cid, up_cid));
CREATE INDEX IF NOT EXISTS commit_subvenance ON commit_provenance (up_cid);
CREATE TABLE IF NOT EXISTS files (
    cid INTEGER NOT NULL, path TEXT NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (cid, path)) WITHOUT ROWID;
"""


class Store:
    """Durable PFS state in ``data_dir`` (``pfs.sqlite`` plus ``blobs/``)."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(data_dir / "blobs")
        self._db = sqlite3.connect(
            data_dir / "pfs.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=OFF")
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        self._db.executescript(SCHEMA)
        with self._write():
            self._db.execute(
                "INSERT OR IGNORE INTO projects (name, description, created) VALUES (?, ?, ?)",
                (DEFAULT_PROJECT, "The default project.", time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self.blobs.close()

    # ----------------------------------------------------------------- transactions

    class _Tx:
        def __init__(self, store: Store):
            self.store = store

        def __enter__(self):
            self.store.blobs.flush()
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, exc_type, exc, tb):
            try:
                if exc_type is None:
                    self.store._db.execute("COMMIT")
                    self.store.changed.notify_all()
                else:
                    self.store._db.execute("ROLLBACK")
            finally:
                self.store._lock.release()

    def _write(self) -> Store._Tx:
        return Store._Tx(self)

    def _query(self, sql: str, args: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # ----------------------------------------------------------------- projects

    def create_project(self, name: str, description: str, update: bool) -> None:
        check_name("project", name)
        with self._write() as db:
            exists = db.execute("SELECT 1 FROM projects WHERE name=?", (name,)).fetchone()
            if exists and not update:
                raise StoreError("ALREADY_EXISTS", f"project {name} already exists")
            if exists:
                db.execute("UPDATE projects SET description=? WHERE name=?", (description, name))
            else:
                db.execute(
                    "INSERT INTO projects (name, description, created) VALUES (?, ?, ?)",
                    (name, description, time.time()),
                )

    def inspect_project(self, name: str) -> tuple[str, str, float, dict[str, str]]:
        rows = self._query(
            "SELECT name, description, created, metadata FROM projects WHERE name=?", (name,)
        )
        if not rows:
            raise not_found(f"project {name} not found")
        name, description, created, metadata = rows[0]
        return name, description, created, json.loads(metadata)

    def list_projects(self) -> list[tuple[str, str, float, dict[str, str]]]:
        return [
            (n, d, c, json.loads(m))
            for n, d, c, m in self._query(
                "SELECT name, description, created, metadata FROM projects ORDER BY name"
            )
        ]

    def delete_project(self, name: str, force: bool) -> None:
        with self._write() as db:
            self.inspect_project(name)
            repos = db.execute("SELECT name FROM repos WHERE project=?", (name,)).fetchall()
            if repos and not force:
                raise precondition(
                    f"cannot delete project {name}: it still has repos "
                    f"{', '.join(r[0] for r in repos)}"
                )
            for (repo,) in repos:
                self._delete_repo(db, RepoKey(name, repo), force=True)
            db.execute("DELETE FROM projects WHERE name=?", (name,))

    # ----------------------------------------------------------------- repos

    def _rid(self, db: sqlite3.Connection, repo: RepoKey) -> int:
        row = db.execute(
            "SELECT rid FROM repos WHERE project=? AND name=?", (repo.project, repo.name)
        ).fetchone()
        if row is None:
            raise not_found(f"repo {repo} not found")
        return row[0]

    def _repo_key(self, db: sqlite3.Connection, rid: int) -> RepoKey:
        project, name = db.execute("SELECT project, name FROM repos WHERE rid=?", (rid,)).fetchone()
        return RepoKey(project, name)

    def create_repo(self, repo: RepoKey, description: str, update: bool) -> None:
        check_name("repo", repo.name)
        with self._write() as db:
            if not db.execute("SELECT 1 FROM projects WHERE name=?", (repo.project,)).fetchone():
                raise not_found(f"project {repo.project} not found")
            row = db.execute(
                "SELECT rid FROM repos WHERE project=? AND name=?", (repo.project, repo.name)
            ).fetchone()
            if row and not update:
                raise StoreError("ALREADY_EXISTS", f"repo {repo} already exists")
            if row:
                db.execute("UPDATE repos SET description=? WHERE rid=?", (description, row[0]))
            else:
                db.execute(
                    "INSERT INTO repos (project, name, description, created) VALUES (?, ?, ?, ?)",
                    (repo.project, repo.name, description, time.time()),
                )

    def inspect_repo(self, repo: RepoKey) -> RepoRow:
        with self._lock:
            rid = self._rid(self._db, repo)
            return self._repo_row(rid)

    def _repo_row(self, rid: int) -> RepoRow:
        project, name, description, created, metadata = self._db.execute(
            "SELECT project, name, description, created, metadata FROM repos WHERE rid=?", (rid,)
        ).fetchone()
        branches = self._db.execute(
            "SELECT name, head FROM branches WHERE rid=? ORDER BY created DESC", (rid,)
        ).fetchall()
        master = dict(branches).get("master")
        row = (
            master
            and self._db.execute(
                "SELECT size_bytes FROM commits WHERE rid=? AND id=?", (rid, master)
            ).fetchone()
        )
        size = row[0] if row else 0
        return RepoRow(
            RepoKey(project, name),
            rid,
            description,
            created,
            json.loads(metadata),
            [b for b, _ in branches],
            size,
        )

    def list_repos(self, projects: list[str] | None = None) -> list[RepoRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT rid, project FROM repos ORDER BY created DESC"
            ).fetchall()
            return [self._repo_row(rid) for rid, p in rows if not projects or p in projects]

    def delete_repo(self, repo: RepoKey, force: bool) -> bool:
        with self._write() as db:
            try:
                self._rid(db, repo)
            except StoreError:
                return False
            self._delete_repo(db, repo, force)
            return True

    def _delete_repo(self, db: sqlite3.Connection, repo: RepoKey, force: bool) -> None:
        rid = self._rid(db, repo)
        downstream = db.execute(
            "SELECT DISTINCT rid FROM branch_provenance WHERE up_rid=? AND rid<>?", (rid, rid)
        ).fetchall()
        if downstream and not force:
            names = ", ".join(str(self._repo_key(db, r)) for (r,) in downstream)
            raise precondition(
                f"cannot delete repo {repo}: branches in {names} have it as provenance; "
                "delete those first or use force"
            )
        cids = [c for (c,) in db.execute("SELECT cid FROM commits WHERE rid=?", (rid,))]
        for cid in cids:
            db.execute("DELETE FROM files WHERE cid=?", (cid,))
            db.execute("DELETE FROM commit_provenance WHERE cid=? OR up_cid=?", (cid, cid))
        db.execute("DELETE FROM commits WHERE rid=?", (rid,))
        db.execute("DELETE FROM branches WHERE rid=?", (rid,))
        db.execute("DELETE FROM branch_provenance WHERE rid=? OR up_rid=?", (rid, rid))
        db.execute("DELETE FROM repos WHERE rid=?", (rid,))

    def delete_all(self) -> None:
        with self._write() as db:
            for table in (
                "files",
                "commit_provenance",
                "commits",
                "branch_provenance",
                "branches",
                "repos",
            ):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM projects WHERE name<>?", (DEFAULT_PROJECT,))

    # ----------------------------------------------------------------- branches

    def _branch_exists(self, db: sqlite3.Connection, rid: int, name: str) -> bool:
        return bool(
            db.execute("SELECT 1 FROM branches WHERE rid=? AND name=?", (rid, name)).fetchone()
        )

    def _direct_provenance(
        self, db: sqlite3.Connection, rid: int, name: str
    ) -> list[tuple[int, str]]:
        return db.execute(
            "SELECT up_rid, up_branch FROM branch_provenance WHERE rid=? AND branch=? "
            "ORDER BY up_rid, up_branch",
            (rid, name),
        ).fetchall()

    def _closure(self, db: sqlite3.Connection, start: list[tuple[int, str]], upstream: bool):
        """All branches reachable from ``start`` (exclusive) up or down the provenance graph."""
        seen: list[tuple[int, str]] = []
        frontier = list(start)
        while frontier:
            rid, name = frontier.pop(0)
            if upstream:
                nxt = self._direct_provenance(db, rid, name)
            else:
                nxt = db.execute(
                    "SELECT rid, branch FROM branch_provenance WHERE up_rid=? AND up_branch=? "
                    "ORDER BY rid, branch",
                    (rid, name),
                ).fetchall()
            for item in nxt:
                if item not in seen and item not in start:
                    seen.append(item)
                    frontier.append(item)
        return seen

    def _branch_key(self, db: sqlite3.Connection, rid: int, name: str) -> BranchKey:
        return BranchKey(self._repo_key(db, rid), name)

    def inspect_branch(self, branch: BranchKey) -> BranchRow:
        with self._lock:
            db = self._db
            rid = self._rid(db, branch.repo)
            row = db.execute(
                "SELECT head, created, updated, metadata FROM branches WHERE rid=? AND name=?",
                (rid, branch.name),
            ).fetchone()
            if row is None:
                raise not_found(f"branch {branch.name} not found in repo {branch.repo}")
            head, created, updated, metadata = row
            direct = self._direct_provenance(db, rid, branch.name)
            return BranchRow(
                branch,
                head,
                [self._branch_key(db, *b) for b in self._closure(db, [(rid, branch.name)], True)],
                [self._branch_key(db, *b) for b in direct],
                [self._branch_key(db, *b) for b in self._closure(db, [(rid, branch.name)], False)],
                created,
                updated,
                json.loads(metadata),
            )

    def list_branches(self, repo: RepoKey | None) -> list[BranchRow]:
        with self._lock:
            if repo is None:
                rows = self._db.execute(
                    "SELECT rid, name FROM branches ORDER BY created DESC"
                ).fetchall()
            else:
                rid = self._rid(self._db, repo)
                rows = self._db.execute(
                    "SELECT rid, name FROM branches WHERE rid=? ORDER BY created DESC", (rid,)
                ).fetchall()
            return [self.inspect_branch(self._branch_key(self._db, r, n)) for r, n in rows]

    def create_branch(
        self,
        branch: BranchKey,
        head: str | None,
        provenance: list[BranchKey],
        new_commit_set: bool = False,
    ) -> None:
        """Create or update a branch; a changed provenance opens a new commit on it.

        As in pachd, a branch that gains provenance gets a new open commit (origin AUTO) whose
        direct provenance is the current heads of its provenance branches.
        """
        check_name("branch", branch.name)
        with self._write() as db:
            rid = self._rid(db, branch.repo)
            now = time.time()
            up = []
            for p in provenance:
                up_rid = self._rid(db, p.repo)
                if not self._branch_exists(db, up_rid, p.name):
                    raise not_found(f"branch {p.name} not found in repo {p.repo}")
                if (up_rid, p.name) == (rid, branch.name):
                    raise invalid(f"branch {branch} cannot be in its own provenance")
                up.append((up_rid, p.name))
            if (rid, branch.name) in self._closure(db, up, upstream=True):
                raise invalid(f"provenance of {branch} would create a cycle")
            head_id = None
            if head is not None:
                head_id = self._resolve(db, branch.repo, head).id
            existed = self._branch_exists(db, rid, branch.name)
            old_up = self._direct_provenance(db, rid, branch.name) if existed else []
            if existed:
                db.execute(
                    "UPDATE branches SET updated=? WHERE rid=? AND name=?", (now, rid, branch.name)
                )
            else:
                db.execute(
                    "INSERT INTO branches (rid, name, head, created, updated) VALUES (?,?,?,?,?)",
                    (rid, branch.name, None, now, now),
                )
            if head_id is not None:
                db.execute(
                    "UPDATE branches SET head=? WHERE rid=? AND name=?", (head_id, rid, branch.name)
                )
            db.execute("DELETE FROM branch_provenance WHERE rid=? AND branch=?", (rid, branch.name))
            for up_rid, up_name in up:
                db.execute(
                    "INSERT INTO branch_provenance VALUES (?,?,?,?)",
                    (rid, branch.name, up_rid, up_name),
                )
            current_head = db.execute(
                "SELECT head FROM branches WHERE rid=? AND name=?", (rid, branch.name)
            ).fetchone()[0]
            provenance_changed = sorted(up) != sorted(old_up)
            if head is None and (current_head is None or provenance_changed or new_commit_set):
                commit_id = uuid.uuid4().hex
                self._open_commit_set(db, [], [(rid, branch.name)], commit_id, "", now)
                db.execute(
                    "UPDATE commits SET finishing=?, finished=? WHERE rid=? AND id=?",
                    (now, now, rid, commit_id),
                )

    def delete_branch(self, branch: BranchKey, force: bool) -> None:
        with self._write() as db:
            rid = self._rid(db, branch.repo)
            if not self._branch_exists(db, rid, branch.name):
                raise not_found(f"branch {branch.name} not found in repo {branch.repo}")
            downstream = self._closure(db, [(rid, branch.name)], upstream=False)
            if downstream and not force:
                raise precondition(
                    f"cannot delete branch {branch}: "
                    f"{', '.join(str(self._branch_key(db, *b)) for b in downstream)} "
                    "have it as provenance; use force"
                )
            db.execute("DELETE FROM branches WHERE rid=? AND name=?", (rid, branch.name))
            db.execute(
                "DELETE FROM branch_provenance "
                "WHERE (rid=? AND branch=?) OR (up_rid=? AND up_branch=?)",
                (rid, branch.name, rid, branch.name),
            )
            db.execute(
                "UPDATE commits SET branch=NULL WHERE rid=? AND branch=?", (rid, branch.name)
            )

    # ----------------------------------------------------------------- commits

    def _commit_row(self, db: sqlite3.Connection, cid: int) -> CommitRow:
        return self._commit_rows(db, [cid])[0]

    def _commit_rows(self, db: sqlite3.Connection, cids: list[int]) -> list[CommitRow]:
        """Rows for ``cids`` in that order, with a fixed number of queries however many."""
        rows: dict[int, CommitRow] = {}
        repos = {
            rid: RepoKey(p, n) for rid, p, n in db.execute("SELECT rid, project, name FROM repos")
        }
        for start in range(0, len(cids), 500):
            batch = cids[start : start + 500]
            marks = ",".join("?" * len(batch))
            for (
                rid,
                cid,
                id_,
                branch,
                origin,
                description,
                parent,
                started,
                finishing,
                finished,
                error,
                size,
                metadata,
            ) in db.execute(
                "SELECT rid, cid, id, branch, origin, description, parent, started, finishing, "
                f"finished, error, size_bytes, metadata FROM commits WHERE cid IN ({marks})",
                batch,
            ):
                rows[cid] = CommitRow(
                    repos[rid],
                    cid,
                    id_,
                    branch,
                    origin,
                    description,
                    parent,
                    [],
                    started,
                    finishing,
                    finished,
                    error,
                    size,
                    [],
                    [],
                    json.loads(metadata),
                )
            for column, other, target in (
                ("cid", "up_cid", "direct_provenance"),
                ("up_cid", "cid", "direct_subvenance"),
            ):
                for cid, rid, id_, branch in db.execute(
                    f"SELECT p.{column}, c.rid, c.id, c.branch FROM commit_provenance p "
                    f"JOIN commits c ON c.cid=p.{other} WHERE p.{column} IN ({marks}) "
                    "ORDER BY c.cid",
                    batch,
                ):
                    getattr(rows[cid], target).append((repos[rid], id_, branch))
        by_parent: dict[tuple[RepoKey, str], list[CommitRow]] = {}
        for row in rows.values():
            by_parent.setdefault((row.repo, row.id), []).append(row)
        ids = sorted({row.id for row in rows.values()})
        for start in range(0, len(ids), 500):
            batch_ids = ids[start : start + 500]
            marks = ",".join("?" * len(batch_ids))
            for rid, parent, child in db.execute(
                f"SELECT rid, parent, id FROM commits WHERE parent IN ({marks}) ORDER BY cid",
                batch_ids,
            ):
                for row in by_parent.get((repos[rid], parent), []):
                    row.children.append(child)
        return [rows[c] for c in cids]

    def _resolve(
        self, db: sqlite3.Connection, repo: RepoKey, id_: str | None, branch: str | None = None
    ) -> CommitRow:
        """Find a commit by ID (with ``^N`` ancestry), or a branch's head."""
        rid = self._rid(db, repo)
        ancestors = 0
        if id_ and "^" in id_:
            id_, _, count = id_.partition("^")
            ancestors = int(count or 1)
        if id_ and not COMMIT_ID_RE.match(id_) and NAME_RE.match(id_):
            branch, id_ = id_, None
        if id_:
            if not COMMIT_ID_RE.match(id_):
                raise invalid(f"commit ID {id_!r} is invalid: {COMMIT_ID_RULE}")
            row = db.execute("SELECT cid FROM commits WHERE rid=? AND id=?", (rid, id_)).fetchone()
            if row is None:
                raise not_found(f"commit {repo}@{id_} not found")
            cid = row[0]
        elif branch:
            row = db.execute(
                "SELECT head FROM branches WHERE rid=? AND name=?", (rid, branch)
            ).fetchone()
            if row is None:
                raise not_found(f"branch {branch} not found in repo {repo}")
            if row[0] is None:
                raise not_found(f"branch {branch} in repo {repo} has no head commit")
            cid = db.execute(
                "SELECT cid FROM commits WHERE rid=? AND id=?", (rid, row[0])
            ).fetchone()[0]
        else:
            raise invalid(f"a commit in repo {repo} needs an ID or a branch")
        for _ in range(ancestors):
            parent = db.execute("SELECT parent FROM commits WHERE cid=?", (cid,)).fetchone()[0]
            if parent is None:
                raise not_found(f"commit {repo}@{id_ or branch}^{ancestors} not found")
            cid = db.execute(
                "SELECT cid FROM commits WHERE rid=? AND id=?", (rid, parent)
            ).fetchone()[0]
        return self._commit_row(db, cid)

    def resolve(self, repo: RepoKey, id_: str | None, branch: str | None = None) -> CommitRow:
        """The commit ``repo@id`` or ``repo@branch`` refers to."""
        with self._lock:
            return self._resolve(self._db, repo, id_, branch)

    def _open_commit_set(
        self,
        db: sqlite3.Connection,
        roots: list[tuple[int, str]],
        downstream_of: list[tuple[int, str]],
        commit_id: str,
        description: str,
        now: float,
        parent_override: str | None = None,
    ) -> None:
        """Open commit ``commit_id`` on ``roots`` (USER) and every branch downstream (AUTO)."""
        targets = [(r, b, ORIGIN_USER) for r, b in roots]
        closure_start = roots + downstream_of
        targets += [(r, b, ORIGIN_AUTO) for r, b in downstream_of]
        targets += [
            (r, b, ORIGIN_AUTO) for r, b in self._closure(db, closure_start, upstream=False)
        ]
        new_cids: dict[tuple[int, str], int] = {}
        for rid, name, origin in targets:
            if db.execute(
                "SELECT 1 FROM commits WHERE rid=? AND id=?", (rid, commit_id)
            ).fetchone():
                continue
            head = db.execute(
                "SELECT head FROM branches WHERE rid=? AND name=?", (rid, name)
            ).fetchone()[0]
            parent = parent_override if (rid, name) in roots and parent_override else head
            cur = db.execute(
                "INSERT INTO commits (rid, id, branch, origin, description, parent, started) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    rid,
                    commit_id,
                    name,
                    origin,
                    description if origin == ORIGIN_USER else "",
                    parent,
                    now,
                ),
            )
            cid = cur.lastrowid
            new_cids[(rid, name)] = cid
            if parent is not None:
                parent_cid, parent_size = db.execute(
                    "SELECT cid, size_bytes FROM commits WHERE rid=? AND id=?", (rid, parent)
                ).fetchone()
                db.execute(
                    "INSERT INTO files (cid, path, blob, size) "
                    "SELECT ?, path, blob, size FROM files WHERE cid=?",
                    (cid, parent_cid),
                )
                db.execute("UPDATE commits SET size_bytes=? WHERE cid=?", (parent_size, cid))
            db.execute(
                "UPDATE branches SET head=?, updated=? WHERE rid=? AND name=?",
                (commit_id, now, rid, name),
            )
        for (rid, name), cid in new_cids.items():
            for up_rid, up_name in self._direct_provenance(db, rid, name):
                up_head = db.execute(
                    "SELECT head FROM branches WHERE rid=? AND name=?", (up_rid, up_name)
                ).fetchone()
                if up_head is None or up_head[0] is None:
                    continue
                up_cid = db.execute(
                    "SELECT cid FROM commits WHERE rid=? AND id=?", (up_rid, up_head[0])
                ).fetchone()[0]
                db.execute("INSERT OR IGNORE INTO commit_provenance VALUES (?,?)", (cid, up_cid))

    def start_commit(
        self,
        branch: BranchKey,
        parent: str | None = None,
        description: str = "",
    ) -> CommitRow:
        """Open a commit on ``branch`` (created if missing) and on every branch downstream."""
        with self._write() as db:
            return self._commit_row(db, self._start_commit(db, branch, parent, description))

    def _start_commit(
        self, db: sqlite3.Connection, branch: BranchKey, parent: str | None, description: str
    ) -> int:
        check_name("branch", branch.name)
        rid = self._rid(db, branch.repo)
        now = time.time()
        parent_id = None
        if parent is not None:
            parent_id = self._resolve(db, branch.repo, parent).id
        if not self._branch_exists(db, rid, branch.name):
            db.execute(
                "INSERT INTO branches (rid, name, head, created, updated) VALUES (?,?,?,?,?)",
                (rid, branch.name, None, now, now),
            )
        head = db.execute(
            "SELECT head FROM branches WHERE rid=? AND name=?", (rid, branch.name)
        ).fetchone()[0]
        if head is not None and parent_id is None:
            finished = db.execute(
                "SELECT finished FROM commits WHERE rid=? AND id=?", (rid, head)
            ).fetchone()[0]
            if finished is None:
                raise precondition(
                    f"parent commit {branch.repo}@{head} has not been finished; "
                    f"finish it before starting another commit on {branch}"
                )
        commit_id = uuid.uuid4().hex
        self._open_commit_set(db, [(rid, branch.name)], [], commit_id, description, now, parent_id)
        return db.execute(
            "SELECT cid FROM commits WHERE rid=? AND id=?", (rid, commit_id)
        ).fetchone()[0]

    def one_off_commit(self, branch: BranchKey, changes: list[FileChange]) -> CommitRow:
        """Start, fill and finish a commit on ``branch`` in one transaction (a write addressed
        to a branch whose head is finished, as pachd does for ``put file repo@branch``)."""
        with self._write() as db:
            cid = self._start_commit(db, branch, None, "")
            self._apply(db, cid, changes)
            now = time.time()
            db.execute("UPDATE commits SET finishing=?, finished=? WHERE cid=?", (now, now, cid))
            return self._commit_row(db, cid)

    def finish_commit(
        self,
        repo: RepoKey,
        id_: str | None,
        branch: str | None,
        error: str = "",
        description: str | None = None,
        force: bool = False,
    ) -> CommitRow:
        """Finish an open commit, recording ``error`` if the work that filled it failed."""
        with self._write() as db:
            commit = self._resolve(db, repo, id_, branch)
            if commit.finished is not None:
                raise already_finished(commit)
            now = time.time()
            db.execute(
                "UPDATE commits SET finishing=?, finished=?, error=?, description=COALESCE(?, "
                "description) WHERE cid=?",
                (now, now, error, description or None, commit.cid),
            )
            return self._commit_row(db, commit.cid)

    def inspect_commit(
        self,
        repo: RepoKey,
        id_: str | None,
        branch: str | None,
        wait: bool,
        timeout: float | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> CommitRow:
        """A commit; with ``wait``, once it has finished."""
        with self.changed:
            commit = self._resolve(self._db, repo, id_, branch)
            deadline = None if timeout is None else time.monotonic() + timeout
            while wait and commit.finished is None and not cancelled():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self.changed.wait(timeout=min(remaining or 1.0, 1.0))
                commit = self._commit_row(self._db, commit.cid)
            return commit

    def list_commits(
        self,
        repo: RepoKey,
        origin: int = 0,
        reverse: bool = False,
        number: int = 0,
        from_id: str | None = None,
        to_id: str | None = None,
    ) -> list[CommitRow]:
        """Commits of a repo, newest first (``reverse``: oldest first)."""
        with self._lock:
            db = self._db
            rid = self._rid(db, repo)
            cids = [
                c
                for (c,) in db.execute(
                    "SELECT cid FROM commits WHERE rid=? ORDER BY cid DESC", (rid,)
                )
            ]
            rows = self._commit_rows(db, cids)
            if to_id:
                to = self._resolve(db, repo, to_id)
                ancestry, cursor = [], to
                by_id = {r.id: r for r in rows}
                while cursor is not None:
                    ancestry.append(cursor)
                    if from_id and cursor.id == from_id:
                        ancestry.pop()
                        break
                    cursor = by_id.get(cursor.parent) if cursor.parent else None
                rows = ancestry
            if origin:
                rows = [r for r in rows if r.origin == origin]
            if reverse:
                rows.reverse()
            return rows[:number] if number else rows

    def commit_set(self, commit_id: str) -> list[CommitRow]:
        """Every commit with global ID ``commit_id``, upstream first."""
        with self._lock:
            cids = [
                c
                for (c,) in self._db.execute(
                    "SELECT cid FROM commits WHERE id=? ORDER BY cid", (commit_id,)
                )
            ]
            if not cids:
                raise not_found(f"commit set {commit_id} not found")
            return self._commit_rows(self._db, cids)

    def list_commit_sets(self) -> list[str]:
        return [
            i for (i,) in self._query("SELECT id FROM commits GROUP BY id ORDER BY MIN(cid) DESC")
        ]

    def wait_commit_set(self, commit_id: str, cancelled: Callable[[], bool]) -> list[CommitRow]:
        """The commit set once every commit in it has finished."""
        with self.changed:
            while True:
                rows = self.commit_set(commit_id)
                if all(r.finished is not None for r in rows) or cancelled():
                    return rows
                self.changed.wait(timeout=1.0)

    def drop_commit_set(self, commit_id: str) -> None:
        """Delete a commit set whose commits have no children; branch heads move back."""
        with self._write() as db:
            rows = self.commit_set(commit_id)
            for row in rows:
                if row.children:
                    raise precondition(f"cannot drop a commit that has children: {row}")
            for row in rows:
                self._delete_commit(db, row)

    def squash_commit_set(self, commit_id: str) -> None:
        """Fold a commit set into its children (whose contents already include it)."""
        with self._write() as db:
            rows = self.commit_set(commit_id)
            for row in rows:
                if not row.children:
                    raise precondition(
                        f"cannot squash a commit that has no children: {row}; "
                        "drop the commit set instead"
                    )
                rid = self._rid(db, row.repo)
                for child in row.children:
                    (finished,) = db.execute(
                        "SELECT finished FROM commits WHERE rid=? AND id=?", (rid, child)
                    ).fetchone()
                    if finished is None:
                        raise precondition(
                            f"cannot squash until child commit {row.repo}@{child} is finished"
                        )
            for row in rows:
                self._delete_commit(db, row)

    def _delete_commit(self, db: sqlite3.Connection, row: CommitRow) -> None:
        rid = self._rid(db, row.repo)
        db.execute(
            "UPDATE commits SET parent=? WHERE rid=? AND parent=?", (row.parent, rid, row.id)
        )
        db.execute("UPDATE branches SET head=? WHERE rid=? AND head=?", (row.parent, rid, row.id))
        db.execute("DELETE FROM files WHERE cid=?", (row.cid,))
        db.execute("DELETE FROM commit_provenance WHERE cid=? OR up_cid=?", (row.cid, row.cid))
        db.execute("DELETE FROM commits WHERE cid=?", (row.cid,))

    def branch_head(self, branch: BranchKey) -> CommitRow | None:
        """The head of ``branch``, or None when the branch does not exist or has no head.
        Raises NOT_FOUND when the repo does not exist."""
        with self._lock:
            rid = self._rid(self._db, branch.repo)
            row = self._db.execute(
                "SELECT head FROM branches WHERE rid=? AND name=?", (rid, branch.name)
            ).fetchone()
            if row is None or row[0] is None:
                return None
            return self._resolve(self._db, branch.repo, row[0])

    def subscribe(
        self,
        repo: RepoKey,
        branch: str | None,
        from_id: str | None,
        wait_finished: bool,
        cancelled: Callable[[], bool],
    ) -> Iterator[CommitRow]:
        """Yield a branch's commits oldest first, then each new one as it appears."""
        sent: set[int] = set()
        skip_through = None
        if from_id:
            skip_through = self.resolve(repo, from_id).cid
        while not cancelled():
            with self.changed:
                rid = self._rid(self._db, repo)
                sql = "SELECT cid, finished FROM commits WHERE rid=?"
                args: list = [rid]
                if branch:
                    sql += " AND branch=?"
                    args.append(branch)
                ready = [
                    c
                    for c, fin in self._db.execute(sql + " ORDER BY cid", args)
                    if c not in sent
                    and (skip_through is None or c > skip_through)
                    and (fin is not None or not wait_finished)
                ]
                rows = self._commit_rows(self._db, ready)
                if not rows:
                    self.changed.wait(timeout=0.5)
            for row in rows:
                sent.add(row.cid)
                yield row

    # ----------------------------------------------------------------- metadata

    def edit_metadata(
        self, target: tuple, edit: Callable[[dict[str, str]], dict[str, str]]
    ) -> None:
        """Apply ``edit`` to the metadata map of a project, repo, branch or commit."""
        kind = target[0]
        with self._write() as db:
            if kind == "project":
                self.inspect_project(target[1])
                where, args, table = "name=?", (target[1],), "projects"
            elif kind == "repo":
                where, args, table = "rid=?", (self._rid(db, target[1]),), "repos"
            elif kind == "branch":
                branch: BranchKey = target[1]
                rid = self._rid(db, branch.repo)
                if not self._branch_exists(db, rid, branch.name):
                    raise not_found(f"branch {branch.name} not found in repo {branch.repo}")
                where, args, table = "rid=? AND name=?", (rid, branch.name), "branches"
            elif kind == "commit":
                commit = self._resolve(db, target[1], target[2], target[3])
                where, args, table = "cid=?", (commit.cid,), "commits"
            else:
                raise StoreError(
                    "UNIMPLEMENTED", f"metadata for {kind} is not supported by the local server"
                )
            (current,) = db.execute(f"SELECT metadata FROM {table} WHERE {where}", args).fetchone()
            updated = edit(json.loads(current))
            db.execute(f"UPDATE {table} SET metadata=? WHERE {where}", (json.dumps(updated), *args))

    # ----------------------------------------------------------------- files

    def apply_changes(self, commit: CommitRow, changes: list[FileChange]) -> None:
        """Apply a ModifyFile stream's changes to an open commit in one transaction."""
        with self._write() as db:
            finished = db.execute(
                "SELECT finished FROM commits WHERE cid=?", (commit.cid,)
            ).fetchone()
            if finished is None:
                raise not_found(f"commit {commit} not found")
            if finished[0] is not None:
                raise already_finished(commit)
            self._apply(db, commit.cid, changes)

    def _apply(self, db: sqlite3.Connection, cid: int, changes: list[FileChange]) -> None:
        for change in changes:
            if change.kind == "delete":
                self._delete_path(db, cid, change.path)
            else:
                db.execute(
                    "INSERT OR REPLACE INTO files (cid, path, blob, size) VALUES (?,?,?,?)",
                    (cid, change.path, change.blob, change.size),
                )
        (size,) = db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM files WHERE cid=?", (cid,)
        ).fetchone()
        db.execute("UPDATE commits SET size_bytes=? WHERE cid=?", (size, cid))

    @staticmethod
    def _delete_path(db: sqlite3.Connection, cid: int, path: str) -> None:
        if path == "/":
            db.execute("DELETE FROM files WHERE cid=?", (cid,))
            return
        db.execute("DELETE FROM files WHERE cid=? AND path=?", (cid, path))
        db.execute(
            "DELETE FROM files WHERE cid=? AND path>=? AND path<?", (cid, path + "/", path + "0")
        )

    def file_blob(self, commit: CommitRow, path: str) -> tuple[str, int] | None:
        """(blob, size) of a regular file, or None."""
        rows = self._query(
            "SELECT blob, size FROM files WHERE cid=? AND path=?", (commit.cid, path)
        )
        return rows[0] if rows else None

    def files_under(self, commit: CommitRow, path: str) -> list[tuple[str, str, int]]:
        """(path, blob, size) of every regular file at or under ``path``, sorted by path."""
        if path == "/":
            return self._query(
                "SELECT path, blob, size FROM files WHERE cid=? ORDER BY path", (commit.cid,)
            )
        return self._query(
            "SELECT path, blob, size FROM files WHERE cid=? AND (path=? OR (path>=? AND path<?)) "
            "ORDER BY path",
            (commit.cid, path, path + "/", path + "0"),
        )
