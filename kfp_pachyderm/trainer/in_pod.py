"""The ``train`` and ``gpu_check`` steps: the trainer run inside the pipeline's own pod.

``train`` uses the same model and loop as the TFJob replicas, on whatever device the pod has
(see :mod:`kfp_pachyderm.trainer.device`), and writes ``/model`` and ``/metrics.json`` into an
output commit whose provenance names the input commit and the device. ``gpu_check`` (the
seed's GPU pipeline) writes what TensorFlow sees and the listing of the input commit into an
output commit. Both are steps like a user's own (:mod:`kfp_pachyderm.trainer.step_functions`,
run by :func:`kfp_pachyderm.steps.run.run_step`).
"""

from __future__ import annotations

import json

from pachyderm_sdk import Client

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.pod import in_kubernetes_pod
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.steps.definition import define_step
from kfp_pachyderm.steps.run import StepResult, run_step
from kfp_pachyderm.trainer import step_functions
from kfp_pachyderm.trainer.device import prepare


def train_in_pod(
    client: Client,
    source: CommitRef,
    output: CommitRef,
    epochs: int,
    batch_size: int,
    record: ProvenanceRecord,
) -> tuple[StepResult, dict]:
    """Train on ``source`` in this process; return the step's result (the model commit, and
    whether it was reused) and the model's metrics."""
    report = prepare(in_kubernetes_pod())  # a GPU requested but missing fails before any write
    gpus = ", ".join(g["name"] for g in report.gpus) or "CPU"
    record.extra = {
        **record.extra,
        "device": f"{report.gpu_count} x {gpus}; driver {report.driver or '-'}; "
        f"TensorFlow {report.tensorflow} (CUDA build {report.cuda_build})",
        "mixed_precision": str(report.mixed_precision),
        "xla": str(report.xla),
    }
    step, _ = define_step(step_functions.train, output.repo, "/", output.branch or DEFAULT_BRANCH)
    parameters = {"epochs": epochs, "batch_size": batch_size}
    result = run_step(client, step, {"data": source}, parameters, record)
    with client.pfs.pfs_file(result.ref.with_path("/metrics.json").pfs_file()) as f:
        return result, json.loads(f.read())


def gpu_check(
    client: Client, source: CommitRef, output: CommitRef, record: ProvenanceRecord
) -> CommitRef:
    """Commit ``devices.json`` (what TensorFlow sees) and ``input-listing.txt`` (the input
    commit's files) to ``output``: the seed's GPU pipeline."""
    step, _ = define_step(
        step_functions.gpu_check, output.repo, "/", output.branch or DEFAULT_BRANCH
    )
    return run_step(client, step, {"data": source}, {}, record).ref
