"""File trees of commits: applying a commit's file changes, checking and reading its files.

A tree is the ``files`` table's rows of one commit (regular files only; directories are implied
by paths); a child commit starts as a copy of its parent's rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from kfp_pachyderm.local.store.database import Database
from kfp_pachyderm.local.store.errors import already_finished, not_found
from kfp_pachyderm.local.store.paths import clean_path, path_collision
from kfp_pachyderm.local.store.records import CommitRow, FileChange


def apply_file_changes(db: sqlite3.Connection, cid: int, changes: list[FileChange]) -> None:
    """Apply ``changes`` in order to commit ``cid``'s tree, in the caller's transaction."""
    for change in changes:
        if change.kind == "delete":
            _delete_path(db, cid, change.path)
        else:
            db.execute(
                "INSERT OR REPLACE INTO files (cid, path, blob, size) VALUES (?,?,?,?)",
                (cid, change.path, change.blob, change.size),
            )
    (size,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM files WHERE cid=?", (cid,)).fetchone()
    db.execute("UPDATE commits SET size_bytes=? WHERE cid=?", (size, cid))


def commit_path_collision(db: sqlite3.Connection, cid: int) -> str:
    """:func:`~kfp_pachyderm.local.store.paths.path_collision` of a finishing commit's files."""
    rows = db.execute("SELECT path FROM files WHERE cid=? ORDER BY path", (cid,))
    return path_collision(path for (path,) in rows)


def _delete_path(db: sqlite3.Connection, cid: int, path: str) -> None:
    if path == "/":
        db.execute("DELETE FROM files WHERE cid=?", (cid,))
        return
    db.execute("DELETE FROM files WHERE cid=? AND path=?", (cid, path))
    db.execute(
        "DELETE FROM files WHERE cid=? AND path>=? AND path<?", (cid, path + "/", path + "0")
    )


class FileStore(Database):
    """The store's file operations."""

    def apply_changes(
        self,
        commit: CommitRow,
        changes: list[FileChange],
        then: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Apply a ModifyFile stream's changes to an open commit in one transaction, which
        ``then`` joins when given."""
        with self._write() as db:
            finished = db.execute(
                "SELECT finished FROM commits WHERE cid=?", (commit.cid,)
            ).fetchone()
            if finished is None:
                raise not_found(f"commit {commit} not found")
            if finished[0] is not None:
                raise already_finished(commit)
            apply_file_changes(db, commit.cid, changes)
            if then is not None:
                then(db)

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

    def copied_files(self, commit: CommitRow, src: str, dst: str) -> list[FileChange]:
        """The puts that copy the file or directory at clean path ``src`` of ``commit`` to
        ``dst``, reusing its blobs, as pachd's CopyFile maps each path (``path.Join(dst,
        rel(src, path))``); NOT_FOUND when nothing is there. ``dst`` is not validated:
        pachd's ``copyFile`` only cleans it."""
        files = self.files_under(commit, src)
        if not files:
            raise not_found(f"file {src} not found in commit {commit}")
        return [
            FileChange("put", clean_path(dst + "/" + path[len(src) :]), blob, size)
            for path, blob, size in files
        ]
