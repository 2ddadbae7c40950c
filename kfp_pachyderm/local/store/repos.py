"""Repos: creating, inspecting, listing and deleting them, with every branch, commit and file
they hold."""

from __future__ import annotations

import json
import sqlite3
import time

from kfp_pachyderm.codec.names import DEFAULT_BRANCH, DEFAULT_PROJECT
from kfp_pachyderm.local.store.database import Database
from kfp_pachyderm.local.store.errors import (
    StoreError,
    check_name_as_pachd,
    not_found,
    precondition,
)
from kfp_pachyderm.local.store.lookups import repo_id, repo_key
from kfp_pachyderm.local.store.records import RepoKey, RepoRow


def delete_repo_tree(db: sqlite3.Connection, repo: RepoKey, force: bool) -> None:
    """Delete ``repo`` with its branches, commits and files, in the caller's transaction;
    unless ``force``, refuse while another repo's branches have it as provenance."""
    rid = repo_id(db, repo)
    downstream = db.execute(
        "SELECT DISTINCT rid FROM branch_provenance WHERE up_rid=? AND rid<>?", (rid, rid)
    ).fetchall()
    if downstream and not force:
        names = ", ".join(str(repo_key(db, r)) for (r,) in downstream)
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


class RepoStore(Database):
    """The store's repo operations."""

    def create_repo(self, repo: RepoKey, description: str, update: bool) -> None:
        check_name_as_pachd("repo", repo.name)
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
            rid = repo_id(self._db, repo)
            return self._repo_row(rid)

    def _repo_row(self, rid: int) -> RepoRow:
        project, name, description, created, metadata = self._db.execute(
            "SELECT project, name, description, created, metadata FROM repos WHERE rid=?", (rid,)
        ).fetchone()
        branches = self._db.execute(
            "SELECT name, head FROM branches WHERE rid=? ORDER BY created DESC", (rid,)
        ).fetchall()
        head = dict(branches).get(DEFAULT_BRANCH)
        row = (
            head
            and self._db.execute(
                "SELECT size_bytes FROM commits WHERE rid=? AND id=?", (rid, head)
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
                repo_id(db, repo)
            except StoreError:
                return False
            delete_repo_tree(db, repo, force)
            return True

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
