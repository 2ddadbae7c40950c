"""start_tfjob on the Kubernetes path, end to end: the step finds the cluster through a kubeconfig,
the real kubernetes client creates the TFJob on the test API server, the test plays the Training
Operator and the kubelet, and the step leaves the replicas' logs and the job's end in the output
commit of the local Pachyderm server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pachyderm_sdk import Client

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree, read_tree
from kfp_pachyderm.tfjob.run import start_tfjob
from kfp_pachyderm.tfjob.settings import DataAccess, RunPolicy, TFJobSettings

from .k8s_api import K8sApi

NS = "kubeflow"
NAME = "tfjob-on-k8s"
POD_UID = "0b7c5a4e-launcher-pod-uid"


@pytest.fixture
def api(tmp_path: Path, monkeypatch) -> K8sApi:
    """The test API server, reached the way a user's machine reaches a cluster: KUBECONFIG,
    and the launcher pod's identity from the variables KFP sets in executor pods."""
    with K8sApi() as server:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "test", "cluster": {"server": server.url}}],
                    "users": [{"name": "test", "user": {"token": "not-a-real-token"}}],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                    "current-context": "test",
                }
            )
        )
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.setenv("KFP_POD_NAME", "run-1-start-tfjob")
        monkeypatch.setenv("KFP_POD_UID", POD_UID)
        monkeypatch.setenv("NAMESPACE", NS)
        yield server


@pytest.fixture
def data(client: Client, tmp_path: Path) -> CommitRef:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,y\n1,2\n")
    ensure_repo(client, CommitRef("data"))
    with output_commit(client, CommitRef("data", branch="master")) as out:
        put_tree(client, out.pfs_commit(), tmp_path / "data")
    return out.ref


def operator(api: K8sApi, end: str, log: str) -> Callable[[], None]:
    """The Training Operator and kubelet: wait for the TFJob, run its chief pod (which prints
    ``log``), and end the job with condition ``end``."""

    def play() -> None:
        api.wait_for(lambda: api.tfjob(NS, NAME) is not None, timeout=30)
        api.transition(NS, NAME, "Created")
        pod = api.add_pod(NS, NAME, "Chief", 0)
        api.transition(NS, NAME, "Running")
        api.wait_for(lambda: api.requests("GET", f"pods/{pod}/log$"), timeout=30)
        api.append_log(NS, pod, log)
        api.finish_pod(NS, pod, "Succeeded" if end == "Succeeded" else "Failed")
        api.transition(NS, NAME, end, message=f"TFJob {NS}/{NAME} {end.lower()} on purpose.")

    return play


def run_step(
    client: Client,
    data_commit: CommitRef,
    lines: list[str],
    inputs: list[CommitRef] = (),
    **overrides,
):
    settings = TFJobSettings(
        image="registry.example.com/ml/trainer:1.0",
        command=["python", "-m", "kfp_pachyderm.trainer"],
        args=["--epochs", "1"],
        runner="kubernetes",
        namespace=NS,
        run_policy=RunPolicy(timeout_s=60),
        **overrides,
    )
    return start_tfjob(
        client,
        settings,
        list(inputs) or [CommitRef("data", branch="master")],
        CommitRef("model", branch="master"),
        ProvenanceRecord(),
        NAME,
        log_line=lines.append,
    )


def test_a_succeeded_tfjob_leaves_its_logs_and_provenance_in_the_output_commit(
    api: K8sApi, client: Client, data: CommitRef, tmp_path: Path
):
    cluster = threading.Thread(target=operator(api, "Succeeded", "step 1: loss 0.25\n"))
    cluster.start()
    lines: list[str] = []
    ref, outcome = run_step(client, data, lines)
    cluster.join()

    assert outcome.succeeded and outcome.deleted
    manifest = api.requests("POST", "tfjobs$")[0].body
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == POD_UID
    container = manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KFP_PACHYDERM_INPUT"] == str(data)
    assert env["KFP_PACHYDERM_OUTPUT"] == str(ref)
    assert [r.path for r in api.requests("DELETE")] == [
        f"/apis/kubeflow.org/v1/namespaces/{NS}/tfjobs/{NAME}"
    ]

    info = inspect_commit(client, ref)
    assert info.finished.year > 1970 and info.error == ""
    read_tree(client, ref.with_path("/logs"), tmp_path / "logs")
    assert (tmp_path / "logs" / "chief-0.log").read_text() == "step 1: loss 0.25\n"
    record = read_provenance(info)
    assert record.inputs == [str(data)]
    assert record.extra["tfjob"] == f"{NS}/{NAME}"
    assert record.extra["tfjob_state"] == "Succeeded"
    assert "[chief-0] step 1: loss 0.25" in lines


def test_a_failed_tfjob_fails_the_step_and_finishes_the_commit_with_the_error(
    api: K8sApi, client: Client, data: CommitRef, tmp_path: Path
):
    cluster = threading.Thread(target=operator(api, "Failed", "Traceback: out of memory\n"))
    cluster.start()
    lines: list[str] = []
    with pytest.raises(KfpPachydermError, match=f"TFJob {NS}/{NAME} ended Failed"):
        run_step(client, data, lines)
    cluster.join()

    assert api.tfjob(NS, NAME) is None
    head = inspect_commit(client, CommitRef("model", branch="master"))
    assert head.finished.year > 1970 and "ended Failed" in head.error
    read_tree(client, CommitRef("model", commit=head.commit.id, path="/logs"), tmp_path / "logs")
    assert (tmp_path / "logs" / "chief-0.log").read_text() == "Traceback: out of memory\n"
    report = "\n".join(lines)
    assert "Traceback: out of memory" in report and "failed on purpose" in report


def test_no_cluster_configuration_fails_before_any_commit(
    api: K8sApi, client: Client, data: CommitRef, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KfpPachydermError, match="no Kubernetes configuration.*set KUBECONFIG"):
        run_step(client, data, [])
    assert [r.repo.name for r in client.pfs.list_repo()] == ["data"]
    assert api.requests() == []


def test_s3_mode_names_every_input_bucket_and_takes_credentials_from_the_secret(
    api: K8sApi, client: Client, data: CommitRef
):
    ensure_repo(client, CommitRef("labels"))
    with output_commit(client, CommitRef("labels", branch="master")) as labels:
        pass
    cluster = threading.Thread(target=operator(api, "Succeeded", "read through S3\n"))
    cluster.start()
    run_step(
        client,
        data,
        [],
        [data, CommitRef("labels", branch="master")],
        data=DataAccess(
            mode="s3", s3_endpoint="pachd.example.com:30600", token_secret="pachd-token"
        ),
    )
    cluster.join()

    manifest = api.requests("POST", "tfjobs$")[0].body
    container = manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") or e.get("valueFrom") for e in container["env"]}
    assert env["S3_ENDPOINT"] == "pachd.example.com:30600"
    assert env["S3_INPUT_BUCKET"] == f"{data.commit}.master.data"
    assert env["S3_INPUT_BUCKETS"] == f"{data.commit}.master.data {labels.ref.commit}.master.labels"
    assert env["KFP_PACHYDERM_INPUTS"] == f"{data}\n{labels.ref}"
    secret = {"secretKeyRef": {"name": "pachd-token", "key": "pachd-token"}}
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == secret
