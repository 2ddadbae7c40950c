"""What every component body shares: its typed inputs, the one input commit most components
take, the provenance record of the step, and the one translation of "not set" values.

KFP parameters cannot be None, so components spell "not set" as ``-1`` for numbers and
``""`` for strings; :func:`unset_to_none` turns both into None, here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Self, TypeVar

import yaml
from kfp import dsl

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.artifacts import commit_of
from kfp_pachyderm.kfp.images import running_image
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, kfp_ids, local_run_extra
from kfp_pachyderm.pfs.refs import CommitRef

T = TypeVar("T", int, str)


class ComponentInputs:
    """Base of each component's frozen inputs dataclass, whose fields are exactly the
    component's parameters (a test holds each pair to that)."""

    @classmethod
    def of(cls, namespace: Mapping[str, Any]) -> Self:
        """The inputs from a component function's ``locals()``; names that are not
        parameters (the body's own imports) are left out."""
        return cls(**{f.name: namespace[f.name] for f in fields(cls)})


def unset_to_none(value: T) -> T | None:
    """None for a component's "not set" value (``-1`` or ``""``), else ``value``: another
    negative number stays as it is, for the check that refuses it to name it."""
    if value == "" or (isinstance(value, int) and not isinstance(value, bool) and value == -1):
        return None
    return value


def input_commit(
    artifact: dsl.Artifact | None,
    ref: str,
    component: str,
    name: str = "input_commit",
    ref_name: str = "input_ref",
) -> CommitRef:
    """A component's input commit: its artifact input ``name`` or its reference input
    ``ref_name``, exactly one of them."""
    if (artifact is None) == (not ref):
        raise UsageError(
            f"{component} needs exactly one of {name} and {ref_name} (got {ref_name}={ref!r})"
        )
    return commit_of(artifact) if artifact is not None else CommitRef.parse(ref)


def step_record(kfp_run_id: str, kfp_task_id: str, **fields: Any) -> ProvenanceRecord:
    """The provenance record of this step: its KFP run and task, the image it runs in, and
    for a local run the process that runs it."""
    run_id, task_id = kfp_ids(kfp_run_id, kfp_task_id)
    record = ProvenanceRecord(
        kfp_run_id=run_id, kfp_task_id=task_id, image=running_image(), **fields
    )
    record.extra = {**local_run_extra(), **record.extra}
    return record


def write_manifests(artifact, documents: list[dict], note: str = "") -> None:
    """Write ``documents`` to ``artifact`` as one multi-document YAML file (a comment when
    there are none)."""
    text = yaml.safe_dump_all(documents, sort_keys=False) if documents else f"# {note}\n"
    Path(artifact.path).write_text(text)
