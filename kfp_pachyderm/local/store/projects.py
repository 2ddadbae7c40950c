"""Projects: creating, inspecting, listing and deleting them (only once they have no repos,
forced or not, as in pachd)."""

from __future__ import annotations

import json
import time

from kfp_pachyderm.codec.names import DEFAULT_PROJECT
from kfp_pachyderm.local.store.database import Database
from kfp_pachyderm.local.store.errors import (
    StoreError,
    check_name_as_pachd,
    not_found,
    precondition,
)
from kfp_pachyderm.local.store.records import ProjectRow

# pachd's projectNameLimit (src/pfs/pfs.go): 63 - len("-v99") - 8
PROJECT_NAME_LIMIT = 51
_COLUMNS = "name, description, created, metadata"


def _project(name: str, description: str, created: float, metadata: str) -> ProjectRow:
    return ProjectRow(name, description, created, json.loads(metadata))


class ProjectStore(Database):
    """The store's project operations."""

    def create_project(self, name: str, description: str, update: bool) -> None:
        check_name_as_pachd("project", name)
        # the rest of pachd's Project.ValidateName, wrapped by createProjectInTransaction
        if name != DEFAULT_PROJECT and len(name) > PROJECT_NAME_LIMIT:
            raise StoreError(
                "UNKNOWN",
                f"invalid project name: project name {name!r} is "
                f"{len(name) - PROJECT_NAME_LIMIT} characters longer than the "
                f"{PROJECT_NAME_LIMIT} max",
            )
        if name != DEFAULT_PROJECT and not name[0].isalnum():
            raise StoreError(
                "UNKNOWN",
                "invalid project name: project names must start with an alphanumeric character",
            )
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

    def inspect_project(self, name: str) -> ProjectRow:
        rows = self._query(f"SELECT {_COLUMNS} FROM projects WHERE name=?", (name,))
        if not rows:
            raise not_found(f"project {name} not found")
        return _project(*rows[0])

    def list_projects(self) -> list[ProjectRow]:
        return [
            _project(*row) for row in self._query(f"SELECT {_COLUMNS} FROM projects ORDER BY name")
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
            if repos:  # pachd's delete fails on the repos' reference to the project
                raise StoreError(
                    "UNKNOWN",
                    f"delete project {name!r}: repos {', '.join(r[0] for r in repos)} still "
                    "exist in it",
                )
            db.execute("DELETE FROM projects WHERE name=?", (name,))
