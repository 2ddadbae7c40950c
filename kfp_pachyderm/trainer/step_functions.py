"""The built-in ``train`` and ``gpu_check`` steps as plain functions over directories, run by
:mod:`kfp_pachyderm.steps.run` like any user's step: pinning, the output commit, provenance
and reuse live in that one place. As in any step, imports are inside the bodies, since the
function's source is what runs."""

TRAINER_GPU_IMAGE = "kfp-pachyderm-trainer-gpu"


def train(data, out, epochs: int = 2, batch_size: int = 64):
    """Train on the input commit (mnist.npz layout); write ``/model`` (SavedModel) and
    ``/metrics.json`` (test accuracy and loss, throughput, the device) into the output commit.
    Ask for GPUs with ``kfp_pachyderm.with_gpu(task)``: on a GPU it uses mixed precision and
    XLA, on a CPU the same code runs unchanged; a GPU requested in a cluster but not visible
    fails the step before it trains.

    Args:
        data: the training data commit (mnist.npz layout)
        epochs: training length, in passes over the data
        batch_size: examples per batch
    """
    from pathlib import Path

    from kfp_pachyderm.kfp.pod import in_kubernetes_pod
    from kfp_pachyderm.trainer.data import load_mnist_npz
    from kfp_pachyderm.trainer.device import prepare
    from kfp_pachyderm.trainer.model import train as fit
    from kfp_pachyderm.trainer.model import write_metrics

    found = sorted(Path(data).rglob("*.npz"))
    if not found:
        raise FileNotFoundError("no .npz file in the input commit (expected mnist.npz)")
    report = prepare(in_kubernetes_pod())
    model = Path(out) / "model"
    metrics = fit(load_mnist_npz(found[0]), model, epochs, batch_size, xla=report.xla)
    metrics["device"] = report.as_dict()
    metrics["gpus"] = report.gpu_count
    write_metrics(Path(out) / "metrics.json", metrics)


def gpu_check(data, out):
    """Write ``devices.json`` (the GPUs TensorFlow sees, the driver, the TensorFlow build) and
    ``input-listing.txt`` (the input commit's files with their sizes) into the output commit.

    Args:
        data: any commit; its files are listed
    """
    import json
    from pathlib import Path

    from kfp_pachyderm.trainer.device import inspect_devices

    report = json.dumps(inspect_devices().as_dict(), indent=2)
    (Path(out) / "devices.json").write_text(report + "\n")
    files = sorted(p for p in Path(data).rglob("*") if p.is_file())
    listing = [f"{p.stat().st_size}\t/{p.relative_to(data).as_posix()}" for p in files]
    (Path(out) / "input-listing.txt").write_text("\n".join(listing) + "\n")
