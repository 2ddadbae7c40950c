"""The explicit provenance record kept on every commit the library writes.

Pachyderm's branch provenance links a commit to the commits of the same global ID upstream;
this record adds what Pachyderm cannot know: the exact input commits (also older ones), the
KFP run and task, the code image and the parameters. It is stored in commit metadata
(``/metadata.API/EditMetadata``, one key per field under :data:`PREFIX`) and summarised in the
commit description.

Example:
    >>> record = ProvenanceRecord(inputs=["images@0123456789ab4def0123456789abcdef"], step="demo")
    >>> ProvenanceRecord.from_metadata(record.to_metadata()) == record
    True
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, dataclass, field, fields

from pachyderm_sdk import Client
from pachyderm_sdk.api import metadata, pfs

from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors

PREFIX = "kfp_pachyderm."


@dataclass
class ProvenanceRecord:
    """What made a commit. Every field is optional except that lists default to empty."""

    inputs: list[str] = field(default_factory=list)
    step: str = ""
    kfp_run_id: str = ""
    kfp_task_id: str = ""
    kfp_pipeline: str = ""
    image: str = ""
    code: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """Flat string metadata, JSON for lists and maps; empty fields are left out."""
        out = {}
        for key, value in asdict(self).items():
            if value:
                out[PREFIX + key] = (
                    value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                )
        return out

    @classmethod
    def from_metadata(cls, data: dict[str, str]) -> ProvenanceRecord | None:
        """The record in a commit's metadata, or None if the library did not write one."""
        if not any(k.startswith(PREFIX) for k in data):
            return None
        values = {}
        for f in fields(cls):
            raw = data.get(PREFIX + f.name)
            if raw is None:
                continue
            values[f.name] = raw if f.type == "str" else json.loads(raw)
        return cls(**values)

    def summary(self) -> str:
        """One line for the commit description."""
        parts = [f"step {self.step}" if self.step else "written by kfp-pachyderm"]
        if self.inputs:
            parts.append("from " + ", ".join(self.inputs))
        if self.kfp_run_id:
            parts.append(f"KFP run {self.kfp_run_id}")
        return "; ".join(parts)


RUN_ID_ENV = "KFP_RUN_ID"
TASK_ID_ENV = "KFP_TASK_ID"
LOCAL_RUN_PID_ENV = "KFP_PACHYDERM_LOCAL_RUN_PID"


def local_run_extra() -> dict[str, str]:
    """For a step of a local run (``run --local``): the host and process of that run, so a
    later writer can tell whether a commit it left open belongs to a run that is gone."""
    pid = os.environ.get(LOCAL_RUN_PID_ENV, "")
    return {"local_run_host": socket.gethostname(), "local_run_pid": pid} if pid else {}


def kfp_ids(run_id: str | None = None, task_id: str | None = None) -> tuple[str, str]:
    """The KFP run and task of this step: the given IDs, else ``KFP_RUN_ID`` and
    ``KFP_TASK_ID`` from the environment. ``use_pachyderm`` sets those from the pod's metadata
    (not as component inputs, which would make every run's cache key different); a retry
    suffix such as ``(1)`` on the task is dropped, so a retried step keeps its identity."""
    run_id = run_id or os.environ.get(RUN_ID_ENV, "")
    task_id = task_id or os.environ.get(TASK_ID_ENV, "")
    return run_id, re.sub(r"\(\d+\)$", "", task_id)


def record_provenance(client: Client, commit: CommitRef, record: ProvenanceRecord) -> None:
    """Write ``record`` into the metadata of ``commit`` (which must name a commit ID)."""
    edit_metadata(client, commit, record.to_metadata())


def edit_metadata(client: Client, commit: CommitRef, values: dict[str, str]) -> None:
    """Set ``values`` as metadata keys of ``commit`` (which must name a commit ID)."""
    picker = pfs.CommitPicker(
        id=pfs.CommitPickerCommitByGlobalId(repo=commit.pfs_repo().as_picker(), id=commit.commit)
    )
    edits = [
        metadata.Edit(commit=picker, edit_key=metadata.EditEditKey(key=k, value=v))
        for k, v in values.items()
    ]
    with rpc_errors(f"editing the metadata of {commit}"):
        client.metadata.edit_metadata(edits=edits)


def read_provenance(info: pfs.CommitInfo) -> ProvenanceRecord | None:
    """The record on an inspected commit, or None."""
    return ProvenanceRecord.from_metadata(dict(info.metadata or {}))
