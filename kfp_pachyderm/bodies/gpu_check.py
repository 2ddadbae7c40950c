"""The ``gpu_check`` component: check the GPUs and record what the step saw."""

from __future__ import annotations

from dataclasses import dataclass

from kfp_pachyderm.bodies.train import TRAINER_GPU_IMAGE
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.contract import Contract, OutputCommit, commit_input
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True, kw_only=True)
class GpuCheckInputs(OutputCommit):
    """The parameters of the ``gpu_check`` component."""

    data: CommitRef = commit_input("any commit; its files are listed")


def run(inputs: GpuCheckInputs) -> str:
    """Run the GPU check on the input commit; return the report commit ID."""
    from kfp_pachyderm.trainer.in_pod import gpu_check

    ref = gpu_check(connect(), inputs.data, inputs.target(), inputs.record())
    describe_commit(inputs.commit, ref)
    return ref.commit


CONTRACT = Contract(
    "gpu_check",
    GpuCheckInputs,
    run,
    """Commit ``devices.json`` (GPUs TensorFlow sees, driver, TF build) and
    ``input-listing.txt`` (the input commit's files) to the output repo; return the commit ID.
    """,
    image=TRAINER_GPU_IMAGE,
)
