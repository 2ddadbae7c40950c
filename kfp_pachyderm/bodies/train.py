"""The ``train`` component's body: train in this pod and describe the model commit."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import ComponentInputs, input_commit, step_record
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True)
class TrainInputs(ComponentInputs):
    """The parameters of the ``train`` component."""

    output_repo: str
    commit: dsl.Artifact
    metrics: dsl.Metrics
    input_commit: dsl.Artifact | None
    input_ref: str
    output_branch: str
    epochs: int
    batch_size: int
    kfp_run_id: str
    kfp_task_id: str


def run(inputs: TrainInputs) -> str:
    """Train on the input commit, log the metrics; return the model commit ID."""
    from kfp_pachyderm.trainer.in_pod import train_in_pod

    source = input_commit(inputs.input_commit, inputs.input_ref, "train")
    target = CommitRef(inputs.output_repo, branch=inputs.output_branch)
    record = step_record(inputs.kfp_run_id, inputs.kfp_task_id)
    result, metrics = train_in_pod(
        connect(), source, target, inputs.epochs, inputs.batch_size, record
    )
    ref = result.ref
    describe_commit(
        inputs.commit, ref, test_accuracy=metrics["test_accuracy"], reused=result.reused
    )
    for key in ("test_accuracy", "test_loss", "examples_per_second"):
        inputs.metrics.log_metric(key, metrics[key])
    inputs.metrics.log_metric("gpus", metrics["device"]["gpu_count"])
    return ref.commit
