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
from kfp_pachyderm.kfp.artifacts import commit_of, describe_commit
from kfp_pachyderm.kfp.images import running_image
from kfp_pachyderm.modelimage.build import ModelImageBuild
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


def report_image_build(build_commit: dsl.Artifact, result: ModelImageBuild) -> str:
    """Describe the build-context commit in the ``build_commit`` output, print what the build
    reused and pushed, and return the image reference with its digest ("" when none)."""
    image = str(result.image) if result.image else ""
    describe_commit(
        build_commit,
        result.build_commit,
        model_commit=result.model.commit,
        image=image,
        base_image=str(result.base),
        reused=result.reused_context,
    )
    print(f"build context {result.build_commit}{' (reused)' if result.reused_context else ''}")
    if result.push is not None:
        push = result.push
        print(
            f"pushed {image}: {len(push.uploaded)} blobs uploaded, {len(push.mounted)} mounted, "
            f"{len(push.copied)} copied, {len(push.present)} already there, "
            f"in {push.seconds:.1f} s"
        )
    return image


def write_manifests(artifact, documents: list[dict], note: str = "") -> None:
    """Write ``documents`` to ``artifact`` as one multi-document YAML file (a comment when
    there are none)."""
    text = yaml.safe_dump_all(documents, sort_keys=False) if documents else f"# {note}\n"
    Path(artifact.path).write_text(text)


def model_to_build(inputs: Any, component: str) -> CommitRef:
    """The model commit an image-building component reads (its ``input_commit`` or
    ``input_ref``, at ``model_path`` unless the reference names a path), once its ``image`` is
    known to be set where ``build_image`` asks for a push."""
    if inputs.build_image and not inputs.image:
        raise UsageError(
            f"{component} needs image (a repository such as registry.example.com/ml/mnist) "
            "unless build_image is false"
        )
    model = input_commit(inputs.input_commit, inputs.input_ref, component)
    return model if model.path is not None else model.with_path(inputs.model_path)
