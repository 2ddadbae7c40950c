"""Lookups every part of the store shares, inside a caller's transaction: repo IDs and keys,
branches and their heads, and the branch provenance graph."""

from __future__ import annotations

import sqlite3

from kfp_pachyderm.local.store.errors import not_found
from kfp_pachyderm.local.store.records import BranchKey, RepoKey


def repo_id(db: sqlite3.Connection, repo: RepoKey) -> int:
    row = db.execute(
        "SELECT rid FROM repos WHERE project=? AND name=?", (repo.project, repo.name)
    ).fetchone()
    if row is None:
        raise not_found(f"repo {repo} not found")
    return row[0]


def repo_key(db: sqlite3.Connection, rid: int) -> RepoKey:
    project, name = db.execute("SELECT project, name FROM repos WHERE rid=?", (rid,)).fetchone()
    return RepoKey(project, name)


def branch_exists(db: sqlite3.Connection, rid: int, name: str) -> bool:
    return bool(db.execute("SELECT 1 FROM branches WHERE rid=? AND name=?", (rid, name)).fetchone())


def branch_key(db: sqlite3.Connection, rid: int, name: str) -> BranchKey:
    return BranchKey(repo_key(db, rid), name)


def head_of(db: sqlite3.Connection, rid: int, name: str) -> str | None:
    """The ID of branch ``name``'s head commit in repo ``rid``; None when the branch has no head
    or does not exist."""
    row = db.execute("SELECT head FROM branches WHERE rid=? AND name=?", (rid, name)).fetchone()
    return row[0] if row else None


def direct_provenance(db: sqlite3.Connection, rid: int, name: str) -> list[tuple[int, str]]:
    return db.execute(
        "SELECT up_rid, up_branch FROM branch_provenance WHERE rid=? AND branch=? "
        "ORDER BY up_rid, up_branch",
        (rid, name),
    ).fetchall()


def closure(
    db: sqlite3.Connection, start: list[tuple[int, str]], upstream: bool
) -> list[tuple[int, str]]:
    """All branches reachable from ``start`` (exclusive) up or down the provenance graph."""
    seen: list[tuple[int, str]] = []
    frontier = list(start)
    while frontier:
        rid, name = frontier.pop(0)
        if upstream:
            nxt = direct_provenance(db, rid, name)
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
