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
    StoreError,
    already_finished,
    check_name_as_pachd,
    not_found,
    precondition,
    refuse_commit_id_as_branch,
)
from kfp_pachyderm.local.store.files import apply_file_changes, commit_path_collision
from kfp_pachyderm.local.store.lookups import (
    branch_exists,
    closure,
    direct_provenance,
    head_of,
    repo_id,
)
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
        head = head_of(db, rid, name)
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
        base = parent
        while base is not None:
            # pachd's getFileset (server_file.go): a commit builds on its nearest ancestor that
            # has no error, so an errored commit's files are left out of its children
            base_cid, base_size, base_error, base_parent = db.execute(
                "SELECT cid, size_bytes, error, parent FROM commits WHERE rid=? AND id=?",
                (rid, base),
            ).fetchone()
            if not base_error:
                db.execute(
                    "INSERT INTO files (cid, path, blob, size) "
                    "SELECT ?, path, blob, size FROM files WHERE cid=?",
                    (cid, base_cid),
                )
                db.execute("UPDATE commits SET size_bytes=? WHERE cid=?", (base_size, cid))
                break
            base = base_parent
        db.execute(
            "UPDATE branches SET head=?, updated=? WHERE rid=? AND name=?",
            (commit_id, now, rid, name),
        )
    for (rid, name), cid in new_cids.items():
        for up_rid, up_name in direct_provenance(db, rid, name):
            _add_provenance(db, cid, up_rid, head_of(db, up_rid, up_name))


def _add_provenance(db: sqlite3.Connection, cid: int, up_rid: int, up_id: str | None) -> None:
    """Give commit ``cid`` the commit ``up_id`` of repo ``up_rid`` as direct provenance (none
    when ``up_id`` is None: a branch with no head)."""
    if up_id is not None:
        db.execute(
            "INSERT OR IGNORE INTO commit_provenance SELECT ?, cid FROM commits "
            "WHERE rid=? AND id=?",
            (cid, up_rid, up_id),
        )


def _upstream_first(rows: list[CommitRow]) -> list[CommitRow]:
    """``rows`` sorted so that each comes after those of its direct provenance among them,
    otherwise in the given order (pachd's ``TopologicalSort``)."""
    by_key = {(r.repo, r.id): r for r in rows}
    done: set[tuple[RepoKey, str]] = set()
    ordered: list[CommitRow] = []

    def visit(row: CommitRow) -> None:
        if (row.repo, row.id) in done:
            return
        for up_repo, up_id, _ in row.direct_provenance:
            up = by_key.get((up_repo, up_id))
            if up is not None:
                visit(up)
        done.add((row.repo, row.id))
        ordered.append(row)

    for row in rows:
        visit(row)
    return ordered


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
        head = head_of(db, rid, branch.name)
        if head is not None and parent_id is None:
            finished = db.execute(
                "SELECT finished FROM commits WHERE rid=? AND id=?", (rid, head)
            ).fetchone()[0]
            if finished is None:
                raise precondition(
                    f"parent commit {branch.repo}@{head} has not been finished; "
                    f"finish it before starting another commit on {branch}"
                )
        if direct_provenance(db, rid, branch.name):
            # pachd's ErrCommitOnOutputBranch (server_commit.go startCommit), no status code
            raise StoreError(
                "UNKNOWN",
                f"{context.removesuffix('create commit')}cannot start a commit on an output "
                f"branch: {branch}",
            )
        commit_id = uuid.uuid4().hex
        open_commit_set(db, [(rid, branch.name)], [], commit_id, description, now, parent_id)
        return db.execute(
            "SELECT cid FROM commits WHERE rid=? AND id=?", (rid, commit_id)
        ).fetchone()[0]

    def one_off_commit(
        self,
        branch: BranchKey,
        changes: list[FileChange],
        then: Callable[[sqlite3.Connection], None] | None = None,
    ) -> CommitRow:
        """Start, fill and finish a commit on ``branch`` in one transaction (a write addressed
        to a branch whose head is finished, as pachd does for ``put file repo@branch``), which
        ``then`` joins when given."""
        with self._write() as db:
            cid = self._start_commit(db, branch, None, "", "create commit")
            apply_file_changes(db, cid, changes)
            if then is not None:
                then(db)
            now = time.time()
            db.execute(
                "UPDATE commits SET finishing=?, finished=?, error=? WHERE cid=?",
                (now, now, commit_path_collision(db, cid), cid),
            )
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
                (
                    now,
                    now,
                    error or commit_path_collision(db, commit.cid),
                    description or None,
                    commit.cid,
                ),
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
        ready: bool = False,
    ) -> CommitRow:
        """A commit; with ``wait``, once it has finished, or with ``ready`` too, once it has
        finished or every commit in its direct provenance has (pachd's READY state:
        ``waitForCommit`` in server_commit.go)."""

        def waiting(commit: CommitRow) -> bool:
            if not wait or commit.finished is not None:
                return False
            if not ready:
                return True
            for up_repo, up_id, _ in commit.direct_provenance:
                up = self._db.execute(
                    "SELECT finished FROM commits WHERE rid=? AND id=?",
                    (repo_id(self._db, up_repo), up_id),
                ).fetchone()
                if up is not None and up[0] is None:
                    return True
            return False

        with self.changed:
            commit = resolve_commit(self._db, repo, id_, branch)
            deadline = None if timeout is None else time.monotonic() + timeout
            while waiting(commit) and not cancelled():
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
        started_time: float | None = None,
    ) -> list[CommitRow]:
        """Commits of a repo, newest first (``reverse``: oldest first). Without ``to_id``,
        ``started_time`` keeps the commits started before it (``reverse``: after it), to the
        microsecond, as pachd's ``listCommit`` does; with ``to_id`` pachd ignores it."""
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
            elif started_time:
                limit = round(started_time * 1_000_000)
                rows = [
                    r
                    for r in rows
                    if (
                        round(r.started * 1_000_000) > limit
                        if reverse
                        else round(r.started * 1_000_000) < limit
                    )
                ]
            if origin:
                rows = [r for r in rows if r.origin == origin]
            if reverse:
                rows.reverse()
            return rows[:number] if number else rows

    def commit_set(self, commit_id: str, with_provenance: bool = False) -> list[CommitRow]:
        """Every commit with global ID ``commit_id``, upstream first; ``with_provenance``
        adds the commits of other sets that they have as provenance, transitively, as pachd's
        InspectCommitSet, WaitCommitSet and ListCommitSet do (``inspectCommitSetImmediateTx``
        with ``CommitSetProvenance`` and ``TopologicalSort``, server_commit_set.go)."""
        with self._lock:
            db = self._db
            cids = [
                c
                for (c,) in db.execute(
                    "SELECT cid FROM commits WHERE id=? ORDER BY cid", (commit_id,)
                )
            ]
            if not cids:
                raise not_found(f"commit set {commit_id} not found")
            if not with_provenance:
                return commit_rows(db, cids)
            seen, frontier = set(cids), list(cids)
            while frontier:
                batch, frontier = frontier[:500], frontier[500:]
                marks = ",".join("?" * len(batch))
                for (up,) in db.execute(
                    f"SELECT up_cid FROM commit_provenance WHERE cid IN ({marks})", batch
                ):
                    if up not in seen:
                        seen.add(up)
                        frontier.append(up)
            upstream = sorted(seen.difference(cids))
            return _upstream_first(commit_rows(db, upstream + cids))

    def list_commit_sets(self) -> list[str]:
        return [
            i for (i,) in self._query("SELECT id FROM commits GROUP BY id ORDER BY MIN(cid) DESC")
        ]

    def wait_commit_set(self, commit_id: str, cancelled: Callable[[], bool]) -> list[CommitRow]:
        """The commit set once every commit in it has finished."""
        with self.changed:
            while True:
                rows = self.commit_set(commit_id, with_provenance=True)
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
            empty_head_id = uuid.uuid4().hex
            for row in rows:
                self._delete_commit(db, row, empty_head_id)

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
            empty_head_id = uuid.uuid4().hex
            for row in rows:
                self._delete_commit(db, row, empty_head_id)

    def _delete_commit(self, db: sqlite3.Connection, row: CommitRow, empty_head_id: str) -> None:
        """Delete one commit of a set being dropped or squashed. A branch it heads moves to its
        parent; when it has none, the branches it heads get a new empty head, commit
        ``empty_head_id`` (origin AUTO, finished unless the first of them has provenance), as
        pachd's ``deleteCommit`` does with ``makeEmptyCommit`` (server_commit_set.go)."""
        rid = repo_id(db, row.repo)
        headless = [
            name
            for (name,) in db.execute(
                "SELECT name FROM branches WHERE rid=? AND head=? ORDER BY name", (rid, row.id)
            )
        ]
        db.execute(
            "UPDATE commits SET parent=? WHERE rid=? AND parent=?", (row.parent, rid, row.id)
        )
        db.execute("UPDATE branches SET head=? WHERE rid=? AND head=?", (row.parent, rid, row.id))
        db.execute("DELETE FROM files WHERE cid=?", (row.cid,))
        db.execute("DELETE FROM commit_provenance WHERE cid=? OR up_cid=?", (row.cid, row.cid))
        db.execute("DELETE FROM commits WHERE cid=?", (row.cid,))
        if row.parent is not None or not headless:
            return
        now = time.time()
        up = direct_provenance(db, rid, headless[0])
        finished = None if up else now
        cid = db.execute(
            "INSERT INTO commits (rid, id, branch, origin, description, parent, started, "
            "finishing, finished) VALUES (?,?,?,?,?,?,?,?,?)",
            (rid, empty_head_id, headless[0], ORIGIN_AUTO, "", None, now, finished, finished),
        ).lastrowid
        for name in headless:
            db.execute(
                "UPDATE branches SET head=?, updated=? WHERE rid=? AND name=?",
                (empty_head_id, now, rid, name),
            )
        for up_rid, up_name in up:
            _add_provenance(db, cid, up_rid, head_of(db, up_rid, up_name))

    def branch_head(self, branch: BranchKey) -> CommitRow | None:
        """The head of ``branch``, or None when the branch does not exist or has no head.
        Raises NOT_FOUND when the repo does not exist."""
        with self._lock:
            head = head_of(self._db, repo_id(self._db, branch.repo), branch.name)
            return None if head is None else resolve_commit(self._db, branch.repo, head)

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
