"""Commits and commit sets: starting a commit (and its same-ID commits downstream), finishing,
inspecting, listing, waiting for, subscribing to, dropping and squashing them.

A commit ID is global: every commit of a commit set has the same ID, one per branch it touched.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator

from kfp_pachyderm.local.store.commit_rows import commit_row, commit_rows, resolve_commit
from kfp_pachyderm.local.store.database import Database
from kfp_pachyderm.local.store.errors import (
    already_finished,
    check_name_as_pachd,
    not_found,
    precondition,
    refuse_commit_id_as_branch,
)
from kfp_pachyderm.local.store.files import apply_file_changes
from kfp_pachyderm.local.store.lookups import branch_exists, closure, direct_provenance, repo_id
from kfp_pachyderm.local.store.records import (
    ORIGIN_AUTO,
    ORIGIN_USER,
    BranchKey,
    CommitRow,
    FileChange,
    RepoKey,
)


def open_commit_set(
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
    targets += [(r, b, ORIGIN_AUTO) for r, b in closure(db, closure_start, upstream=False)]
    new_cids: dict[tuple[int, str], int] = {}
    for rid, name, origin in targets:
        if db.execute("SELECT 1 FROM commits WHERE rid=? AND id=?", (rid, commit_id)).fetchone():
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
        for up_rid, up_name in direct_provenance(db, rid, name):
            up_head = db.execute(
                "SELECT head FROM branches WHERE rid=? AND name=?", (up_rid, up_name)
            ).fetchone()
            if up_head is None or up_head[0] is None:
                continue
            up_cid = db.execute(
                "SELECT cid FROM commits WHERE rid=? AND id=?", (up_rid, up_head[0])
            ).fetchone()[0]
            db.execute("INSERT OR IGNORE INTO commit_provenance VALUES (?,?)", (cid, up_cid))


class CommitStore(Database):
    """The store's commit and commit set operations."""

    def resolve(self, repo: RepoKey, id_: str | None, branch: str | None = None) -> CommitRow:
        """The commit ``repo@id`` or ``repo@branch`` refers to."""
        with self._lock:
            return resolve_commit(self._db, repo, id_, branch)

    def start_commit(
        self,
        branch: BranchKey,
        parent: str | None = None,
        description: str = "",
    ) -> CommitRow:
        """Open a commit on ``branch`` (created if missing) and on every branch downstream."""
        with self._write() as db:
            cid = self._start_commit(
                db, branch, parent, description, "start commit in transaction: create commit"
            )
            return commit_row(db, cid)

    def _start_commit(
        self,
        db: sqlite3.Connection,
        branch: BranchKey,
        parent: str | None,
        description: str,
        context: str,
    ) -> int:
        """Open the commit; ``context`` is the start of pachd's wording for an error on the
        branch, which depends on the RPC that starts the commit."""
        check_name_as_pachd("branch", branch.name)
        rid = repo_id(db, branch.repo)
        refuse_commit_id_as_branch(branch.name, f"{context}: create commit")
        now = time.time()
        parent_id = None
        if parent is not None:
            parent_id = resolve_commit(db, branch.repo, parent).id
        if not branch_exists(db, rid, branch.name):
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
        open_commit_set(db, [(rid, branch.name)], [], commit_id, description, now, parent_id)
        return db.execute(
            "SELECT cid FROM commits WHERE rid=? AND id=?", (rid, commit_id)
        ).fetchone()[0]

    def one_off_commit(self, branch: BranchKey, changes: list[FileChange]) -> CommitRow:
        """Start, fill and finish a commit on ``branch`` in one transaction (a write addressed
        to a branch whose head is finished, as pachd does for ``put file repo@branch``)."""
        with self._write() as db:
            cid = self._start_commit(db, branch, None, "", "create commit")
            apply_file_changes(db, cid, changes)
            now = time.time()
            db.execute("UPDATE commits SET finishing=?, finished=? WHERE cid=?", (now, now, cid))
            return commit_row(db, cid)

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
            commit = resolve_commit(db, repo, id_, branch)
            if commit.finished is not None:
                raise already_finished(commit)
            now = time.time()
            db.execute(
                "UPDATE commits SET finishing=?, finished=?, error=?, description=COALESCE(?, "
                "description) WHERE cid=?",
                (now, now, error, description or None, commit.cid),
            )
            return commit_row(db, commit.cid)

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
            commit = resolve_commit(self._db, repo, id_, branch)
            deadline = None if timeout is None else time.monotonic() + timeout
            while wait and commit.finished is None and not cancelled():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self.changed.wait(timeout=min(remaining or 1.0, 1.0))
                commit = commit_row(self._db, commit.cid)
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
            rid = repo_id(db, repo)
            cids = [
                c
                for (c,) in db.execute(
                    "SELECT cid FROM commits WHERE rid=? ORDER BY cid DESC", (rid,)
                )
            ]
            rows = commit_rows(db, cids)
            if to_id:
                to = resolve_commit(db, repo, to_id)
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
            return commit_rows(self._db, cids)

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
                rid = repo_id(db, row.repo)
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
        rid = repo_id(db, row.repo)
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
            rid = repo_id(self._db, branch.repo)
            row = self._db.execute(
                "SELECT head FROM branches WHERE rid=? AND name=?", (rid, branch.name)
            ).fetchone()
            if row is None or row[0] is None:
                return None
            return resolve_commit(self._db, branch.repo, row[0])

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
                rid = repo_id(self._db, repo)
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
                rows = commit_rows(self._db, ready)
                if not rows:
                    self.changed.wait(timeout=0.5)
            for row in rows:
                sent.add(row.cid)
                yield row
