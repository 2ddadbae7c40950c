"""The ``train`` and ``gpu_check`` steps: the trainer run inside the pipeline's own pod.

``train`` uses the same model and loop as the TFJob replicas, on whatever device the pod has
(see :mod:`kfp_pachyderm.trainer.device`), and writes ``/model`` and ``/metrics.json`` into an
output commit whose provenance names the input commit and the device. ``gpu_check`` (the
seed's GPU pipeline) writes what TensorFlow sees and the listing of the input commit into an
output commit.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pachyderm_sdk import Client

from kfp_pachyderm.kfp.pod import in_kubernetes_pod
from kfp_pachyderm.pfs.commits import ensure_output_branch, output_commit, resolve, reusable_result
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, record_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree
from kfp_pachyderm.trainer.data import load_mnist_npz
from kfp_pachyderm.trainer.device import inspect_devices, prepare
from kfp_pachyderm.trainer.io import fetch_input, publish
from kfp_pachyderm.trainer.model import train, write_metrics


def train_in_pod(
    client: Client,
    source: CommitRef,
    output: CommitRef,
    epochs: int,
    batch_size: int,
    record: ProvenanceRecord,
) -> tuple[CommitRef, dict]:
    """Train on ``source`` in this process; return the model commit and its metrics."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs ({epochs}) and batch size ({batch_size}) must be at least 1")
    report = prepare(in_kubernetes_pod())
    source = resolve(client, source)
    target = ensure_output_branch(client, output)
    record.step = record.step or "train"
    record.inputs = [str(source)]
    record.parameters = {**record.parameters, "epochs": str(epochs), "batch_size": str(batch_size)}
    reused = reusable_result(client, target, record)
    if reused is not None:
        with client.pfs.pfs_file(reused.with_path("/metrics.json").pfs_file()) as f:
            print(f"{reused} was trained from {source} with the same settings; reusing it")
            return reused, json.loads(f.read())
    with output_commit(client, target, same_id_as=source.commit, provenance=record) as out:
        with tempfile.TemporaryDirectory() as tmp:
            npz = fetch_input("pfs", str(source), Path(tmp) / "input", client)
            result = Path(tmp) / "output"
            metrics = train(
                load_mnist_npz(npz), result / "model", epochs, batch_size, xla=report.xla
            )
            metrics["device"] = report.as_dict()
            write_metrics(result / "metrics.json", metrics)
            publish("pfs", str(out.ref), result, client)
        gpus = ", ".join(g["name"] for g in report.gpus) or "CPU"
        record.extra = {
            **record.extra,
            "device": f"{report.gpu_count} x {gpus}; driver {report.driver or '-'}; "
            f"TensorFlow {report.tensorflow} (CUDA build {report.cuda_build})",
            "mixed_precision": str(report.mixed_precision),
            "xla": str(report.xla),
        }
        record_provenance(client, out.ref, record)
    return out.ref, metrics


def gpu_check(
    client: Client, source: CommitRef, output: CommitRef, record: ProvenanceRecord
) -> CommitRef:
    """Commit ``devices.json`` (what TensorFlow sees) and ``input-listing.txt`` (the input
    commit's files) to ``output``: the seed's GPU pipeline."""
    source = resolve(client, source)
    report = inspect_devices()
    listing = [
        f"{f.size_bytes}\t{f.file.path}"
        for f in client.pfs.walk_file(file=source.with_path(source.path or "/").pfs_file())
    ]
    target = ensure_output_branch(client, output)
    record.step = record.step or "gpu_check"
    record.inputs = [str(source)]
    with (
        output_commit(client, target, same_id_as=source.commit, provenance=record) as out,
        tempfile.TemporaryDirectory() as tmp,
    ):
        Path(tmp, "devices.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        Path(tmp, "input-listing.txt").write_text("\n".join(listing) + "\n")
        put_tree(client, out.pfs_commit(), Path(tmp), replace=False)
    return out.ref
