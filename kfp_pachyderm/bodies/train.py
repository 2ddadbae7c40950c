"""The ``train`` component: the MNIST step run in this pod, its metrics logged for the KFP UI."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.checks import at_least
from kfp_pachyderm.kfp.contract import Contract, OutputCommit, commit_input, output, parameter
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef

TRAINER_GPU_IMAGE = "kfp-pachyderm-trainer-gpu"


@dataclass(frozen=True, kw_only=True)
class TrainInputs(OutputCommit):
    """The parameters of the ``train`` component."""

    metrics: dsl.Metrics = output(
        "test_accuracy, test_loss, examples_per_second, gpus", dsl.Metrics
    )
    data: CommitRef = commit_input("the training data commit (mnist.npz layout)")
    epochs: int = parameter("training length, in passes over the data", 2, check=at_least(1))
    batch_size: int = parameter("examples per batch", 64, check=at_least(1))


def run(inputs: TrainInputs) -> str:
    """Train on the input commit, log the metrics; return the model commit ID."""
    from kfp_pachyderm.trainer.in_pod import train_in_pod

    result, metrics = train_in_pod(
        connect(), inputs.data, inputs.target(), inputs.epochs, inputs.batch_size, inputs.record()
    )
    ref = result.ref
    describe_commit(
        inputs.commit, ref, test_accuracy=metrics["test_accuracy"], reused=result.reused
    )
    for key in ("test_accuracy", "test_loss", "examples_per_second"):
        inputs.metrics.log_metric(key, metrics[key])
    inputs.metrics.log_metric("gpus", metrics["device"]["gpu_count"])
    return ref.commit


CONTRACT = Contract(
    "train",
    TrainInputs,
    run,
    """Train on the input commit (mnist.npz layout); write ``/model`` (SavedModel) and
    ``/metrics.json`` into an output commit; return its ID. Ask for GPUs with
    ``kfp_pachyderm.with_gpu(task)``: on a GPU it uses mixed precision and XLA, on a
    CPU the same code runs unchanged; a GPU requested in a cluster but not visible fails fast.
    """,
    image=TRAINER_GPU_IMAGE,
)
