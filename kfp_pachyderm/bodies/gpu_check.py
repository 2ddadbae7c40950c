"""The ``gpu_check`` component's body: check the GPUs and record what the step saw."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import ComponentInputs, input_commit, step_record
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True)
class GpuCheckInputs(ComponentInputs):
    """The parameters of the ``gpu_check`` component."""

    output_repo: str
    commit: dsl.Artifact
    input_commit: dsl.Artifact | None
    input_ref: str
    output_branch: str
    kfp_run_id: str
    kfp_task_id: str


def run(inputs: GpuCheckInputs) -> str:
    """Run the GPU check on the input commit; return the report commit ID."""
    from kfp_pachyderm.trainer.in_pod import gpu_check

    source = input_commit(inputs.input_commit, inputs.input_ref, "gpu_check")
    target = CommitRef(inputs.output_repo, branch=inputs.output_branch)
    ref = gpu_check(connect(), source, target, step_record(inputs.kfp_run_id, inputs.kfp_task_id))
    describe_commit(inputs.commit, ref)
    return ref.commit
