"""start_tfjob with the local executor: real multi-worker TensorFlow, failures, timeouts,
restarts, and bad input refused before anything is created."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import KfpPachydermError, NotFoundError, UsageError
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree
from kfp_pachyderm.tfjob.run import start_tfjob
from kfp_pachyderm.tfjob.settings import DataAccess, Replicas, Resources, RunPolicy, TFJobSettings
from kfp_pachyderm.tfjob.spec import TFJobSpecError
from kfp_pachyderm.trainer.data import write_mnist_npz

IMAGE = "registry.example.com/ml/trainer:1.0"


@pytest.fixture
def mnist(client: Client, tmp_path: Path, monkeypatch) -> CommitRef:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    write_mnist_npz(tmp_path / "data" / "mnist.npz")
    ensure_repo(client, CommitRef("mnist"))
    with output_commit(client, CommitRef("mnist", branch="master")) as out:
        put_tree(client, out.pfs_commit(), tmp_path / "data")
    return out.ref


def settings(**overrides) -> TFJobSettings:
    base = dict(
        image=IMAGE,
        command=["python", "-m", "kfp_pachyderm.trainer"],
        args=["--epochs", "1"],
        runner="local",
        run_policy=RunPolicy(timeout_s=300),
    )
    return TFJobSettings(**{**base, **overrides})


def files(client: Client, ref: CommitRef) -> set[str]:
    return {f.file.path for f in client.pfs.walk_file(file=ref.with_path("/").pfs_file())}


@pytest.mark.slow
def test_chief_and_two_workers_train_and_the_model_commit_names_its_input(
    client: Client, mnist: CommitRef
):
    lines: list[str] = []
    record = ProvenanceRecord(kfp_run_id="run-1", kfp_task_id="task-1")
    model, outcome = start_tfjob(
        client,
        settings(replicas=Replicas(workers=2)),
        [mnist],
        CommitRef("model", branch="master"),
        record,
        "tfjob-test-1",
        log_line=lines.append,
    )
    assert outcome.succeeded and [c.type for c in outcome.conditions] == [
        "Created",
        "Running",
        "Succeeded",
    ]
    assert {
        "/model/saved_model.pb",
        "/metrics.json",
        "/logs/chief-0.log",
        "/logs/worker-1.log",
    } <= files(client, model)
    with client.pfs.pfs_file(model.with_path("/metrics.json").pfs_file()) as f:
        metrics = json.loads(f.read())
    assert metrics["replicas"] == 3 and metrics["test_accuracy"] > 0.2
    info = inspect_commit(client, model)
    recorded = read_provenance(info)
    assert recorded.inputs == [str(mnist)] and recorded.image == IMAGE
    assert (
        recorded.extra["tfjob"] == "kubeflow/tfjob-test-1"
        and recorded.extra["tfjob_state"] == "Succeeded"
    )
    assert not info.error and any(line.startswith("[worker-1]") for line in lines)


def test_a_failed_job_fails_the_step_finishes_the_commit_with_the_error_and_keeps_its_logs(
    client: Client, mnist: CommitRef
):
    crash = settings(
        command=[sys.executable, "-c", "import sys; print('boom on purpose'); sys.exit(3)"],
        args=[],
        replicas=Replicas(workers=1),
        run_policy=RunPolicy(timeout_s=300, backoff_limit=0),
    )
    lines: list[str] = []
    with pytest.raises(KfpPachydermError, match="ended Failed"):
        start_tfjob(
            client,
            crash,
            [mnist],
            CommitRef("model", branch="master"),
            ProvenanceRecord(),
            "tfjob-crash",
            log_line=lines.append,
        )
    head = inspect_commit(client, CommitRef("model", branch="master"))
    assert "ended Failed" in head.error and head.finished.year > 1970
    assert "/logs/chief-0.log" in files(client, CommitRef("model", commit=head.commit.id))
    report = "\n".join(lines)
    assert "--- master replica logs ---" in report and "boom on purpose" in report


def test_timeout_stops_every_replica(client: Client, mnist: CommitRef):
    sleepy = settings(
        command=[sys.executable, "-c", "import time; time.sleep(60)"],
        args=[],
        replicas=Replicas(workers=1, ps=1),
        run_policy=RunPolicy(timeout_s=2),
    )
    with pytest.raises(KfpPachydermError, match="ended TimedOut"):
        start_tfjob(
            client,
            sleepy,
            [mnist],
            CommitRef("model", branch="master"),
            ProvenanceRecord(),
            "tfjob-slow",
        )
    assert "TimedOut" in inspect_commit(client, CommitRef("model", branch="master")).error


def test_a_crashing_replica_is_restarted(client: Client, mnist: CommitRef, tmp_path: Path):
    marker = tmp_path / "crashed-once"
    script = (
        f"import pathlib, sys; p = pathlib.Path({str(marker)!r});"
        "sys.exit(0) if p.exists() else (p.touch(), sys.exit(1))"
    )
    flaky = settings(
        command=[sys.executable, "-c", script],
        args=[],
        run_policy=RunPolicy(timeout_s=300, backoff_limit=2),
    )
    _, outcome = start_tfjob(
        client,
        flaky,
        [mnist],
        CommitRef("model", branch="master"),
        ProvenanceRecord(),
        "tfjob-flaky",
    )
    assert [c.type for c in outcome.conditions] == ["Created", "Running", "Restarting", "Succeeded"]


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"image": "not a valid image"},
            UsageError,
            "invalid image reference 'not a valid image'",
        ),
        ({"replicas": Replicas(chief=0, workers=0)}, TFJobSpecError, "at least one replica type"),
        ({"replicas": Replicas(workers=-1)}, UsageError, "invalid Worker replica count -1"),
        ({"data": DataAccess(mode="nfs")}, UsageError, "invalid data mode 'nfs'"),
        ({"data": DataAccess(mode="s3")}, UsageError, "data mode s3 needs s3_endpoint"),
        ({"resources": Resources(cpu="lots")}, UsageError, "invalid cpu quantity 'lots'"),
    ],
)
def test_bad_settings_fail_before_anything_is_created(
    client: Client, mnist, overrides, error, message
):
    with pytest.raises(error, match=message):
        start_tfjob(
            client,
            settings(**overrides),
            [mnist],
            CommitRef("model", branch="master"),
            ProvenanceRecord(),
            "tfjob-bad",
        )
    assert not client.pfs.repo_exists(pfs.Repo(name="model"))


def test_unknown_input_commit_fails_before_anything_is_created(client: Client, mnist):
    ghost = CommitRef("mnist", commit="0123456789ab4def0123456789abcdef")
    with pytest.raises(NotFoundError, match="0123456789ab4def0123456789abcdef"):
        start_tfjob(
            client,
            settings(),
            [ghost],
            CommitRef("model", branch="master"),
            ProvenanceRecord(),
            "tfjob-x",
        )
    assert not client.pfs.repo_exists(pfs.Repo(name="model"))


def test_replicas_get_every_input_back_even_with_spaces_in_paths():
    from uuid import uuid4

    from kfp_pachyderm.tfjob.env import input_commits, replica_inputs

    refs = [
        CommitRef.parse(f"images@master={uuid4().hex}:/my data"),
        CommitRef.parse(f"labels@{uuid4().hex}"),
    ]
    env = replica_inputs(refs)
    assert input_commits(env) == refs
    assert input_commits({"KFP_PACHYDERM_INPUT": str(refs[0])}) == refs[:1]
