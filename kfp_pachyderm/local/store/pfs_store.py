"""The local server's PFS store: one object with every operation on projects, repos, branches,
commits and files, plus metadata edits, which touch all of them, and the S3 gateway's multipart
uploads in progress.

Every method is safe to call from many threads (see :mod:`kfp_pachyderm.local.store`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kfp_pachyderm.local.store.branches import BranchStore
from kfp_pachyderm.local.store.commit_rows import resolve_commit
from kfp_pachyderm.local.store.commits import CommitStore
from kfp_pachyderm.local.store.errors import not_found
from kfp_pachyderm.local.store.files import FileStore
from kfp_pachyderm.local.store.lookups import branch_exists, repo_id
from kfp_pachyderm.local.store.projects import ProjectStore
from kfp_pachyderm.local.store.records import (
    BranchTarget,
    CommitTarget,
    MetadataTarget,
    ProjectTarget,
    RepoTarget,
)
from kfp_pachyderm.local.store.repos import RepoStore
from kfp_pachyderm.local.store.uploads import UploadStore


class Store(ProjectStore, RepoStore, BranchStore, CommitStore, FileStore, UploadStore):
    """Durable PFS state in ``data_dir`` (``pfs.sqlite`` plus ``blobs/``)."""

    def __init__(self, data_dir: Path):
        super().__init__(data_dir)
        self.sweep_uploads()

    def edit_metadata(
        self, target: MetadataTarget, edit: Callable[[dict[str, str]], dict[str, str]]
    ) -> None:
        """Apply ``edit`` to the metadata map of a project, repo, branch or commit."""
        with self._write() as db:
            match target:
                case ProjectTarget(name):
                    self.inspect_project(name)
                    where, args, table = "name=?", (name,), "projects"
                case RepoTarget(repo):
                    where, args, table = "rid=?", (repo_id(db, repo),), "repos"
                case BranchTarget(branch):
                    rid = repo_id(db, branch.repo)
                    if not branch_exists(db, rid, branch.name):
                        raise not_found(f"branch {branch.name} not found in repo {branch.repo}")
                    where, args, table = "rid=? AND name=?", (rid, branch.name), "branches"
                case CommitTarget(repo, id_, branch_name):
                    commit = resolve_commit(db, repo, id_, branch_name)
                    where, args, table = "cid=?", (commit.cid,), "commits"
            (current,) = db.execute(f"SELECT metadata FROM {table} WHERE {where}", args).fetchone()
            updated = edit(json.loads(current))
            db.execute(f"UPDATE {table} SET metadata=? WHERE {where}", (json.dumps(updated), *args))
