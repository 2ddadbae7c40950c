"""The store's SQLite schema, connection and transactions.

One connection in WAL mode, guarded by one re-entrant lock; a write is one ``BEGIN IMMEDIATE``
transaction that, once committed, wakes every caller waiting on ``changed``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from kfp_pachyderm.codec.names import DEFAULT_PROJECT
from kfp_pachyderm.local.blobs import BlobStore

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
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS upload_parts (
    upload TEXT NOT NULL, number INTEGER NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL,
    modified REAL NOT NULL, PRIMARY KEY (upload, number)) WITHOUT ROWID;
"""


class Database:
    """The store's SQLite database in ``data_dir`` (``pfs.sqlite``) and its blobs (``blobs/``),
    with the lock, transactions and change notifications every part of the store uses."""

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

    class _Tx:
        def __init__(self, store: Database):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store.blobs.flush()
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            try:
                if exc_type is None:
                    self.store._db.execute("COMMIT")
                    self.store.changed.notify_all()
                else:
                    self.store._db.execute("ROLLBACK")
            finally:
                self.store._lock.release()

    def _write(self) -> Database._Tx:
        return Database._Tx(self)

    def _query(self, sql: str, args: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()
