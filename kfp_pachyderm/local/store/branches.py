"""Branches: their heads, their provenance (a DAG of branches) and what changing it does.

A branch that gains provenance gets a new open commit whose direct provenance is the current
heads of its provenance branches, and a provenance branch that does not exist yet is created
with a finished empty head, as in pachd.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

from kfp_pachyderm.local.store.commit_rows import resolve_commit
from kfp_pachyderm.local.store.commits import open_commit_set
from kfp_pachyderm.local.store.database import Database
from kfp_pachyderm.local.store.errors import (
    StoreError,
    check_name_as_pachd,
    invalid,
    not_found,
    precondition,
    refuse_commit_id_as_branch,
)
from kfp_pachyderm.local.store.lookups import (
    branch_exists,
    branch_key,
    closure,
    direct_provenance,
    head_of,
    repo_id,
)
from kfp_pachyderm.local.store.records import ORIGIN_AUTO, BranchKey, BranchRow, RepoKey


def _finish(db: sqlite3.Connection, rid: int, commit_id: str, now: float) -> None:
    """Finish commit ``commit_id`` of repo ``rid`` as of ``now``."""
    db.execute(
        "UPDATE commits SET finishing=?, finished=? WHERE rid=? AND id=?",
        (now, now, rid, commit_id),
    )


def _fill_new_branches(
    db: sqlite3.Connection, branches: list[tuple[int, str]], commit_id: str, now: float
) -> None:
    """Create each of ``branches`` that does not exist yet, its head a finished empty commit
    ``commit_id`` (origin AUTO, no parent), as pachd's ``fillNewBranches`` does for the
    provenance of a branch being created (server_branch.go). Their repos exist already."""
    for rid, name in branches:
        if branch_exists(db, rid, name):
            continue
        if not db.execute(
            "SELECT 1 FROM commits WHERE rid=? AND id=?", (rid, commit_id)
        ).fetchone():
            db.execute(
                "INSERT INTO commits (rid, id, branch, origin, description, parent, started, "
                "finishing, finished) VALUES (?,?,?,?,?,?,?,?,?)",
                (rid, commit_id, name, ORIGIN_AUTO, "", None, now, now, now),
            )
        db.execute(
            "INSERT INTO branches (rid, name, head, created, updated) VALUES (?,?,?,?,?)",
            (rid, name, commit_id, now, now),
        )


class BranchStore(Database):
    """The store's branch operations."""

    def inspect_branch(self, branch: BranchKey) -> BranchRow:
        with self._lock:
            db = self._db
            rid = repo_id(db, branch.repo)
            row = db.execute(
                "SELECT head, created, updated, metadata FROM branches WHERE rid=? AND name=?",
                (rid, branch.name),
            ).fetchone()
            if row is None:
                raise not_found(f"branch {branch.name} not found in repo {branch.repo}")
            head, created, updated, metadata = row
            direct = direct_provenance(db, rid, branch.name)
            return BranchRow(
                branch,
                head,
                [branch_key(db, *b) for b in closure(db, [(rid, branch.name)], True)],
                [branch_key(db, *b) for b in direct],
                [branch_key(db, *b) for b in closure(db, [(rid, branch.name)], False)],
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
                rid = repo_id(self._db, repo)
                rows = self._db.execute(
                    "SELECT rid, name FROM branches WHERE rid=? ORDER BY created DESC", (rid,)
                ).fetchall()
            return [self.inspect_branch(branch_key(self._db, r, n)) for r, n in rows]

    def create_branch(
        self, branch: BranchKey, head: str | None, provenance: list[BranchKey]
    ) -> None:
        """Create or update a branch, as pachd's ``createBranch`` (server_branch.go) does.

        A provenance branch that does not exist yet is created in its (existing) repo with a
        finished empty head (pachd's ``fillNewBranches``). The branch gets a new head commit
        (origin AUTO, parent its current head, direct provenance the heads of its provenance
        branches) when it has no head, or when its provenance changes to a non-empty one; that
        commit stays open when the branch has provenance (pachd's ``makeEmptyCommit``) and is
        opened with the same ID on every branch downstream. One commit ID serves the whole
        call, as pachd's transaction does.
        """
        for name in [p.name for p in provenance] + [branch.name]:
            check_name_as_pachd("branch", name)
        with self._write() as db:
            rid = repo_id(db, branch.repo)
            refuse_commit_id_as_branch(branch.name, "create branch")
            up = [(repo_id(db, p.repo), p.name) for p in provenance]
            for (up_rid, _), p in zip(up, provenance, strict=True):
                if up_rid == rid:
                    raise StoreError(
                        "UNKNOWN",
                        f"repo {branch.repo} cannot be in the provenance of its own branch",
                    )
                refuse_commit_id_as_branch(p.name, "fill new branches: upsert branch")
            if (rid, branch.name) in closure(db, up, upstream=True):
                raise invalid(f"provenance of {branch} would create a cycle")
            head_id = None
            if head is not None:
                head_id = resolve_commit(db, branch.repo, head).id
            now = time.time()
            commit_id = uuid.uuid4().hex
            _fill_new_branches(db, up, commit_id, now)
            existed = branch_exists(db, rid, branch.name)
            old_up = direct_provenance(db, rid, branch.name) if existed else []
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
            if head_of(db, rid, branch.name) is None or (up and sorted(up) != sorted(old_up)):
                open_commit_set(db, [], [(rid, branch.name)], commit_id, "", now)
                if not up:
                    _finish(db, rid, commit_id, now)

    def delete_branch(self, branch: BranchKey, force: bool) -> None:
        with self._write() as db:
            rid = repo_id(db, branch.repo)
            if not branch_exists(db, rid, branch.name):
                raise not_found(f"branch {branch.name} not found in repo {branch.repo}")
            downstream = closure(db, [(rid, branch.name)], upstream=False)
            if downstream and not force:
                raise precondition(
                    f"cannot delete branch {branch}: "
                    f"{', '.join(str(branch_key(db, *b)) for b in downstream)} "
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
