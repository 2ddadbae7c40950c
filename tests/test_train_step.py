"""The train and gpu_check steps (pfs_steps run in the pipeline's pod): the same trainer,
device checks, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.kfp.contract import step_record
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit, output_commit
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree
from kfp_pachyderm.steps.run import run_step
from kfp_pachyderm.trainer.data import write_mnist_npz


@pytest.fixture
def mnist(client: Client, tmp_path: Path) -> CommitRef:
    write_mnist_npz(tmp_path / "data" / "mnist.npz")
    ensure_repo(client, CommitRef("mnist"))
    with output_commit(client, CommitRef("mnist", branch="master")) as out:
        put_tree(client, out.pfs_commit(), tmp_path / "data")
    return out.ref


def _run(step: str, client: Client, **parameters) -> CommitRef:
    """Run the built-in ``step`` (a pfs_step component) as its component body would."""
    component = load_component(step)
    result = run_step(
        client, component.definition, parameters.pop("inputs"), parameters, step_record()
    )
    return result.ref


@pytest.mark.slow
def test_train_on_cpu_reports_the_device_in_its_metrics(
    client: Client, mnist: CommitRef, monkeypatch
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KFP_PACHYDERM_EXPECTED_GPUS", "1")  # requested, none here: a warning
    model = _run("train", client, inputs={"data": mnist}, epochs=1, batch_size=64)
    with client.pfs.pfs_file(model.with_path("/metrics.json").pfs_file()) as f:
        metrics = json.loads(f.read())
    assert metrics["device"]["gpu_count"] == 0 and metrics["device"]["mixed_precision"] is False
    assert metrics["gpus"] == 0 and 0 <= metrics["test_accuracy"] <= 1
    record = read_provenance(inspect_commit(client, model))
    assert record.inputs == [str(mnist)] and record.step == "train" and model.repo == "model"
    assert record.parameters["epochs"] == "1"
    assert client.pfs.path_exists(model.with_path("/model/saved_model.pb").pfs_file())


@pytest.mark.slow
def test_a_gpu_requested_in_a_cluster_but_missing_fails_fast(
    client: Client, mnist: CommitRef, monkeypatch
):
    """It fails before training: the output commit is finished with the error and holds
    nothing."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KFP_PACHYDERM_EXPECTED_GPUS", "2")
    with pytest.raises(OperationError, match="2 GPU\\(s\\) requested but TensorFlow sees 0"):
        _run("train", client, inputs={"data": mnist}, epochs=1, batch_size=64)
    head = inspect_commit(client, CommitRef("model", branch=DEFAULT_BRANCH))
    assert head.finished and "NoGpuError" in head.error
    assert (
        list(client.pfs.walk_file(file=CommitRef("model", commit=head.commit.id).pfs_file())) == []
    )


def test_bad_training_parameters_are_refused_before_any_write(client: Client, mnist: CommitRef):
    """The train component's checks run in its body before anything is written."""
    component = load_component("train")
    with pytest.raises(UsageError, match="parameter epochs=0: must be at least 1"):
        component.python_func(commit=None, metrics=None, data_ref=str(mnist), epochs=0)
    assert "model" not in {info.repo.name for info in client.pfs.list_repo()}


@pytest.mark.slow
def test_gpu_check_writes_devices_and_the_input_listing(client: Client, mnist: CommitRef):
    out = _run("gpu_check", client, inputs={"data": mnist})
    assert out.repo == "gpu-check"
    with client.pfs.pfs_file(out.with_path("/devices.json").pfs_file()) as f:
        devices = json.loads(f.read())
    assert devices["gpu_count"] == 0 and devices["tensorflow"]
    with client.pfs.pfs_file(out.with_path("/input-listing.txt").pfs_file()) as f:
        assert "/mnist.npz" in f.read().decode()


@pytest.mark.slow
def test_the_gpu_settings_train_on_any_device(tmp_path: Path):
    """Mixed precision and XLA are chosen only on GPUs; their code path must still train
    correctly, which a CPU can check (slowly, so on a small slice)."""
    import keras
    import numpy as np

    from kfp_pachyderm.trainer.data import digits_as_mnist
    from kfp_pachyderm.trainer.model import train

    arrays = {k: v[:256] for k, v in digits_as_mnist().items()}
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        metrics = train(arrays, tmp_path / "model", epochs=1, batch_size=64, xla=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(metrics["train_loss"]) and (tmp_path / "model" / "saved_model.pb").exists()
