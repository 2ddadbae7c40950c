"""The TFJob launcher, with the real kubernetes client over HTTP against the test API server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from kfp_pachyderm.tfjob.k8s_api import TFJobApiError
from kfp_pachyderm.tfjob.launcher import TFJobLauncher, kubernetes_clients
from kfp_pachyderm.tfjob.outcome import FAILED, SUCCEEDED, TIMED_OUT
from kfp_pachyderm.tfjob.owner import (
    launcher_owner_reference,
    launcher_pod_from_env,
    owner_reference_from_pod,
)
from kfp_pachyderm.tfjob.spec import ReplicaSpec, TFJobSpec

from .k8s_api import K8sApi, Recorder

NS = "kubeflow"
TFJOBS = f"/apis/kubeflow.org/v1/namespaces/{NS}/tfjobs"
REPO_ROOT = Path(__file__).resolve().parent.parent

# A launcher in its own process, as in a KFP pod: argv is the API URL and the job name.
LAUNCHER_SCRIPT = """
import sys
from kubernetes.client import Configuration
from kfp_pachyderm.tfjob.launcher import TFJobLauncher, kubernetes_clients
from kfp_pachyderm.tfjob.spec import ReplicaSpec, TFJobSpec

custom, core = kubernetes_clients(Configuration(host=sys.argv[1]))
launcher = TFJobLauncher(custom, core, log=lambda line: print(line, flush=True))
spec = TFJobSpec(name=sys.argv[2], namespace="kubeflow",
                 replicas={"Worker": ReplicaSpec(image="registry.example.com/trainer:1")})
with launcher.handle_sigterm():
    launcher.run(spec, timeout_s=600)
"""


@pytest.fixture
def api():
    with K8sApi() as server:
        yield server


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def launcher(api: K8sApi, rec: Recorder) -> TFJobLauncher:
    custom, core = kubernetes_clients(api.configuration())
    return TFJobLauncher(
        custom, core, clock=rec.clock, sleeper=rec.sleeps.append, log=rec.log, log_grace_s=2.0
    )


def worker_spec(name: str = "mnist-1", **replicas: int) -> TFJobSpec:
    image = ReplicaSpec(image="registry.example.com/trainer:1", command=["python", "-m", "t"])
    counts = replicas or {"Chief": 1, "Worker": 2}
    return TFJobSpec(
        name=name,
        namespace=NS,
        replicas={kind: image.with_replicas(n) for kind, n in counts.items()},
    )


def start(launcher: TFJobLauncher, spec: TFJobSpec, **kwargs) -> Future:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(launcher.run, spec, kwargs.pop("timeout_s", 600), **kwargs)
    pool.shutdown(wait=False)
    return future


def watching(api: K8sApi, count: int = 1) -> None:
    """Wait until the launcher has opened ``count`` watches on TFJobs."""
    api.wait_for(
        lambda: len([r for r in api.requests("GET", TFJOBS) if r.query.get("watch")]) >= count
    )


def test_posts_the_exact_manifest(api: K8sApi, launcher: TFJobLauncher, rec: Recorder) -> None:
    api.add_pod(NS, "launcher", "launcher", 0)  # stands in for the KFP pod running the step
    owner = owner_reference_from_pod(launcher.core_api, NS, "launcher-launcher-0")
    gpu = ReplicaSpec(
        image="registry.example.com/ml/trainer:2.1",
        command=["python", "-m", "kfp_pachyderm.trainer"],
        args=["--epochs", "3"],
        env={"EPOCHS": "3"},
        cpu="2",
        memory="4Gi",
        gpus=1,
    )
    spec = TFJobSpec(
        name="run-42-train",
        namespace=NS,
        replicas={
            "Chief": gpu,
            "Worker": gpu.with_replicas(3),
            "PS": ReplicaSpec(image="registry.example.com/ml/trainer:2.1", restart_policy="Never"),
        },
        clean_pod_policy="All",
        ttl_seconds_after_finished=600,
        backoff_limit=2,
        active_deadline_seconds=3600,
        env={"INPUT_COMMIT": "images@abc123"},
        secret_env={"PACH_PYTHON_AUTH_TOKEN": ("pachyderm-token", "token")},
        labels={"pipelines.kubeflow.org/run-id": "42"},
        service_account="trainer",
        owner=owner,
    )
    run = start(launcher, spec)
    api.wait_for_request("POST", TFJOBS)
    api.transition(NS, spec.name, "Succeeded")
    assert run.result(10).state == SUCCEEDED

    posts = api.requests("POST")
    assert [p.path for p in posts] == [TFJOBS]
    token = {
        "name": "PACH_PYTHON_AUTH_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "pachyderm-token", "key": "token"}},
    }
    env = [
        {"name": "EPOCHS", "value": "3"},
        {"name": "INPUT_COMMIT", "value": "images@abc123"},
        token,
    ]
    resources = {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    gpu_container = {
        "name": "tensorflow",
        "image": "registry.example.com/ml/trainer:2.1",
        "command": ["python", "-m", "kfp_pachyderm.trainer"],
        "args": ["--epochs", "3"],
        "env": env,
        "resources": resources,
    }
    ps_container = {
        "name": "tensorflow",
        "image": "registry.example.com/ml/trainer:2.1",
        "env": [{"name": "INPUT_COMMIT", "value": "images@abc123"}, token],
    }

    def replica(count: int, policy: str, container: dict) -> dict:
        return {
            "replicas": count,
            "restartPolicy": policy,
            "template": {
                "metadata": {"labels": {"pipelines.kubeflow.org/run-id": "42"}},
                "spec": {"containers": [container], "serviceAccountName": "trainer"},
            },
        }

    assert posts[0].body == {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {
            "name": "run-42-train",
            "namespace": NS,
            "labels": {"pipelines.kubeflow.org/run-id": "42"},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": "launcher-launcher-0",
                    "uid": api.get("pods", NS, "launcher-launcher-0")["metadata"]["uid"],
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "runPolicy": {
                "cleanPodPolicy": "All",
                "ttlSecondsAfterFinished": 600,
                "backoffLimit": 2,
                "activeDeadlineSeconds": 3600,
            },
            "tfReplicaSpecs": {
                "Chief": replica(1, "OnFailure", gpu_container),
                "Worker": replica(3, "OnFailure", gpu_container),
                "PS": replica(1, "Never", ps_container),
            },
        },
    }


def test_created_running_restarting_succeeded(
    api: K8sApi, launcher: TFJobLauncher, rec: Recorder
) -> None:
    spec = worker_spec()
    run = start(launcher, spec)
    api.wait_for_request("POST", TFJOBS)
    watching(api)
    api.transition(NS, spec.name, "Created")
    chief = api.add_pod(NS, spec.name, "Chief", 0)
    worker = api.add_pod(NS, spec.name, "Worker", 1, phase="Pending")
    api.transition(NS, spec.name, "Running")
    api.append_log(NS, chief, "epoch 1 loss 0.9\n")
    api.wait_for(lambda: "[chief-0] epoch 1 loss 0.9" in rec.lines)

    api.set_phase(NS, worker, "Running")
    api.append_log(NS, worker, "worker started\n")
    api.wait_for(lambda: "[worker-1] worker started" in rec.lines)
    api.restart_pod(NS, worker)
    api.transition(NS, spec.name, "Restarting", message="worker-1 exited with code 137")
    api.append_log(NS, worker, "worker started again\n")
    api.transition(NS, spec.name, "Running")
    api.append_log(NS, chief, "epoch 2 loss 0.5\nsaved model")
    api.finish_pod(NS, chief)
    api.finish_pod(NS, worker)
    api.transition(NS, spec.name, "Succeeded")
    outcome = run.result(10)

    assert outcome.state == SUCCEEDED and outcome.succeeded
    assert not outcome.adopted and outcome.deleted
    assert [(c.type, c.status) for c in outcome.conditions] == [
        ("Created", "True"),
        ("Running", "True"),
        ("Restarting", "True"),
        ("Running", "True"),
        ("Running", "False"),
        ("Succeeded", "True"),
    ]
    log = rec.text()
    assert f"TFJob {NS}/{spec.name} is Restarting replicas: TFJobRestarting: worker-1 exited" in log
    assert "[worker-1] worker started again" in rec.lines
    assert "[chief-0] saved model" in rec.lines
    assert outcome.replica_logs == {
        "chief-0": "epoch 1 loss 0.9\nepoch 2 loss 0.5\nsaved model\n",
        "worker-1": "worker started\nworker started again\n",
    }
    assert outcome.master_logs == outcome.replica_logs["chief-0"]
    deletes = api.requests("DELETE")
    assert [d.path for d in deletes] == [f"{TFJOBS}/{spec.name}"]
    assert deletes[0].body["propagationPolicy"] == "Foreground"
    assert api.tfjob(NS, spec.name) is None
    watches = [r for r in api.requests("GET", TFJOBS) if r.query.get("watch")]
    assert all(w.query["fieldSelector"] == f"metadata.name={spec.name}" for w in watches)
    assert all(w.query.get("resourceVersion") for w in watches)


def test_failed_job_reports_master_logs_and_events(
    api: K8sApi, launcher: TFJobLauncher, rec: Recorder
) -> None:
    spec = worker_spec("mnist-fails", Worker=2)
    run = start(launcher, spec, delete_after=False)
    api.wait_for_request("POST", TFJOBS)
    watching(api)
    master = api.add_pod(NS, spec.name, "Worker", 0)
    api.transition(NS, spec.name, "Running")
    api.append_log(NS, master, "Traceback (most recent call last):\nValueError: bad shape\n")
    api.finish_pod(NS, master, phase="Failed", exit_code=1)
    api.add_event(NS, "TFJob", spec.name, "ExitedWithCode", "Pod: kubeflow.mnist-fails-worker-0")
    api.add_event(NS, "Pod", master, "BackOff", "Back-off restarting failed container")
    api.transition(NS, spec.name, "Failed", message="TFJob mnist-fails has failed")
    outcome = run.result(10)

    assert outcome.state == FAILED and not outcome.succeeded
    assert "ValueError: bad shape" in outcome.master_logs
    assert not outcome.deleted and api.requests("DELETE") == []
    assert len(outcome.events) == 2
    report = outcome.failure_report()
    assert f"TFJob {spec.name} ended Failed" in report
    assert "Warning ExitedWithCode TFJob/mnist-fails: Pod: kubeflow.mnist-fails-worker-0" in report
    assert f"Warning BackOff Pod/{master}: Back-off restarting failed container" in report
    assert "ValueError: bad shape" in report


def test_failed_without_forwarding_reads_master_logs(api: K8sApi, launcher: TFJobLauncher) -> None:
    spec = worker_spec("quiet", Chief=1)
    run = start(launcher, spec, forward_logs=False)
    api.wait_for_request("POST", TFJOBS)
    watching(api)
    chief = api.add_pod(NS, spec.name, "Chief", 0)
    api.append_log(NS, chief, "out of memory\n")
    api.finish_pod(NS, chief, phase="Failed", exit_code=137)
    api.transition(NS, spec.name, "Failed")
    outcome = run.result(10)
    assert outcome.master_logs == "out of memory\n"
    assert outcome.replica_logs == {}
    assert outcome.deleted


def test_timeout_deletes_the_job(api: K8sApi, launcher: TFJobLauncher, rec: Recorder) -> None:
    spec = worker_spec("slow")
    run = start(launcher, spec, timeout_s=30, delete_after=False)
    api.wait_for_request("POST", TFJOBS)
    watching(api)
    api.transition(NS, spec.name, "Running")
    rec.now = 31.0
    api.touch(NS, spec.name)
    outcome = run.result(10)
    assert outcome.state == TIMED_OUT
    assert outcome.deleted
    assert [d.path for d in api.requests("DELETE")] == [f"{TFJOBS}/{spec.name}"]
    assert f"TFJob {NS}/slow did not end within 30s" in rec.text()
    assert "ended TimedOut" in outcome.failure_report()


def run_launcher_process(api: K8sApi, name: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER_SCRIPT, api.url, name],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_restarted_launcher_adopts_the_job(
    api: K8sApi, launcher: TFJobLauncher, rec: Recorder
) -> None:
    first = run_launcher_process(api, "adopt-me")
    try:
        api.wait_for_request("POST", TFJOBS, timeout=30)
        watching(api)
        api.transition(NS, "adopt-me", "Running")
    finally:
        first.kill()  # the launcher pod dies without cleaning up
        first.communicate()
    assert api.tfjob(NS, "adopt-me") is not None

    run = start(launcher, worker_spec("adopt-me", Worker=1))
    watching(api, count=2)
    api.transition(NS, "adopt-me", "Succeeded")
    outcome = run.result(10)
    assert outcome.adopted and outcome.state == SUCCEEDED
    assert len(api.requests("POST")) == 1
    assert f"adopting TFJob {NS}/adopt-me" in rec.text()


def test_conflict_on_create_adopts(api: K8sApi, launcher: TFJobLauncher, rec: Recorder) -> None:
    spec = worker_spec("raced")
    api.create_tfjob(spec.manifest())  # created by another launcher after our GET
    api.fail_next("GET", f"{TFJOBS}/raced$", 404, 'tfjobs.kubeflow.org "raced" not found')
    run = start(launcher, spec)
    watching(api)
    api.transition(NS, spec.name, "Succeeded")
    outcome = run.result(10)
    assert outcome.adopted
    assert len(api.requests("POST")) == 1
    assert "already exists; adopting it" in rec.text()


def test_sigterm_deletes_the_job_and_exits_non_zero(api: K8sApi) -> None:
    proc = run_launcher_process(api, "cancel-me")
    try:
        api.wait_for_request("POST", TFJOBS, timeout=30)
        watching(api)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert [d.path for d in api.requests("DELETE")] == [f"{TFJOBS}/cancel-me"]
    assert api.tfjob(NS, "cancel-me") is None
    assert "TFJobCancelled" in err
    assert "SIGTERM: deleting TFJob kubeflow/cancel-me" in out


def test_retryable_503_is_retried(api: K8sApi, launcher: TFJobLauncher, rec: Recorder) -> None:
    api.fail_next("POST", TFJOBS, 503, "etcdserver: leader changed", times=2)
    spec = worker_spec("flaky")
    run = start(launcher, spec)
    watching(api)
    api.transition(NS, spec.name, "Succeeded")
    assert run.result(10).succeeded
    assert len(api.requests("POST")) == 3
    assert rec.sleeps == [0.5, 1.0]
    assert "HTTP 503 etcdserver: leader changed; retrying in 0.5s (attempt 1 of 6)" in rec.text()


def test_throttled_watch_is_retried(api: K8sApi, launcher: TFJobLauncher, rec: Recorder) -> None:
    api.fail_next("GET", TFJOBS + "$", 429, "too many requests", times=2)
    spec = worker_spec("busy")
    run = start(launcher, spec)
    api.wait_for_request("GET", TFJOBS + "$", count=3)
    watching(api)
    api.transition(NS, spec.name, "Succeeded")
    assert run.result(10).succeeded
    assert rec.sleeps == [0.5, 1.0]


def test_retries_are_bounded(api: K8sApi, launcher: TFJobLauncher, rec: Recorder) -> None:
    api.fail_next("POST", TFJOBS, 503, "apiserver overloaded", times=100)
    with pytest.raises(TFJobApiError, match="after 6 attempts: HTTP 503") as caught:
        launcher.run(worker_spec("never"), timeout_s=60)
    assert caught.value.status == 503
    assert rec.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_forbidden_is_fatal_and_clear(api: K8sApi, launcher: TFJobLauncher, rec: Recorder) -> None:
    message = (
        'tfjobs.kubeflow.org is forbidden: User "system:serviceaccount:kubeflow:pipeline-runner" '
        'cannot create resource "tfjobs" in API group "kubeflow.org" in the namespace "kubeflow"'
    )
    api.fail_next("POST", TFJOBS, 403, message)
    with pytest.raises(TFJobApiError) as caught:
        launcher.run(worker_spec("denied"), timeout_s=60)
    text = str(caught.value)
    assert "cannot create tfjobs.kubeflow.org for TFJob kubeflow/denied: HTTP 403" in text
    assert message in text
    assert "needs RBAC permission to create tfjobs.kubeflow.org in namespace kubeflow" in text
    assert caught.value.status == 403
    assert rec.sleeps == []
    assert len(api.requests("POST")) == 1


def test_fatal_error_after_create_deletes_the_job(
    api: K8sApi, launcher: TFJobLauncher, rec: Recorder
) -> None:
    api.fail_next("GET", TFJOBS + "$", 403, 'cannot list resource "tfjobs"')
    with pytest.raises(TFJobApiError, match="cannot list tfjobs.kubeflow.org .* HTTP 403"):
        launcher.run(worker_spec("unwatchable"), timeout_s=60)
    assert [d.path for d in api.requests("DELETE")] == [f"{TFJOBS}/unwatchable"]
    assert api.tfjob(NS, "unwatchable") is None


def test_unlistable_events_do_not_stop_the_cleanup(api: K8sApi, launcher: TFJobLauncher) -> None:
    api.fail_next("GET", "/events$", 403, 'cannot list resource "events"')
    spec = worker_spec("no-events")
    run = start(launcher, spec)
    watching(api)
    api.transition(NS, spec.name, "Failed")
    outcome = run.result(10)
    assert outcome.state == FAILED and outcome.deleted
    assert len(outcome.events) == 1
    assert (
        "(no events: cannot list events for TFJob kubeflow/no-events: HTTP 403"
        in (outcome.events[0])
    )


def test_missing_crd_names_the_operator(rec: Recorder) -> None:
    with K8sApi(crds=()) as bare:
        custom, core = kubernetes_clients(bare.configuration())
        launcher = TFJobLauncher(custom, core, sleeper=rec.sleeps.append, log=rec.log)
        with pytest.raises(TFJobApiError, match="is the Kubeflow Training Operator installed"):
            launcher.run(worker_spec("nocrd"), timeout_s=60)


def test_gone_watch_relists_and_continues(
    api: K8sApi, launcher: TFJobLauncher, rec: Recorder
) -> None:
    spec = worker_spec("gone")
    run = start(launcher, spec)
    api.wait_for_request("POST", TFJOBS)
    watching(api)
    api.transition(NS, spec.name, "Running")
    api.wait_for(lambda: any("Running=True" in line for line in rec.lines))
    api.compact()
    watching(api, count=2)
    api.transition(NS, spec.name, "Succeeded")
    outcome = run.result(10)
    assert outcome.succeeded
    lists = [r for r in api.requests("GET", TFJOBS + "$") if not r.query.get("watch")]
    assert len(lists) == 2
    assert "resourceVersion expired; re-listing" in rec.text()
    assert [c.type for c in outcome.conditions].count("Running") == 2  # True, then False


def test_watch_reconnects_after_server_timeout(api: K8sApi, rec: Recorder) -> None:
    custom, core = kubernetes_clients(api.configuration())
    launcher = TFJobLauncher(custom, core, log=rec.log, watch_timeout_s=1)
    spec = worker_spec("reconnect")
    run = start(launcher, spec)
    watching(api, count=2)
    api.transition(NS, spec.name, "Succeeded")
    assert run.result(10).succeeded
    watches = [r for r in api.requests("GET", TFJOBS) if r.query.get("watch")]
    assert all(w.query["timeoutSeconds"] == "1" for w in watches)
    assert watches[1].query["resourceVersion"] == watches[0].query["resourceVersion"]


def test_job_deleted_by_someone_else_fails(api: K8sApi, launcher: TFJobLauncher) -> None:
    spec = worker_spec("vanishing")
    run = start(launcher, spec)
    watching(api)
    api.delete_tfjob(NS, spec.name)
    outcome = run.result(10)
    assert outcome.state == FAILED
    assert outcome.conditions[-1].reason == "TFJobDeleted"


def test_bad_timeout_is_refused(launcher: TFJobLauncher) -> None:
    with pytest.raises(ValueError, match="invalid timeout_s 0"):
        launcher.run(worker_spec(), timeout_s=0)


def test_launcher_pod_from_kfp_env(tmp_path: Path) -> None:
    ns_file = tmp_path / "namespace"
    ns_file.write_text("kubeflow-user\n")
    env = {"KFP_POD_NAME": "run-42-step", "KFP_POD_UID": "1234-uid", "HOSTNAME": "other"}
    pod = launcher_pod_from_env(env, ns_file)
    assert (pod.name, pod.namespace, pod.uid) == ("run-42-step", "kubeflow-user", "1234-uid")
    assert launcher_pod_from_env({"HOSTNAME": "laptop"}, ns_file) is None
    pod = launcher_pod_from_env(
        {"HOSTNAME": "p", "KUBERNETES_SERVICE_HOST": "10.0.0.1", "NAMESPACE": "ns"},
        tmp_path / "absent",
    )
    assert (pod.name, pod.namespace, pod.uid) == ("p", "ns", None)


def test_launcher_owner_reference(api: K8sApi, tmp_path: Path) -> None:
    _, core = kubernetes_clients(api.configuration())
    ns_file = tmp_path / "namespace"
    ns_file.write_text(NS)
    env = {"KFP_POD_NAME": "step", "KFP_POD_UID": "uid-1"}
    assert launcher_owner_reference(core, NS, env, ns_file) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "step",
        "uid": "uid-1",
        "controller": False,
        "blockOwnerDeletion": False,
    }
    assert launcher_owner_reference(core, "elsewhere", env, ns_file) is None
    assert api.requests() == []
    pod = api.add_pod(NS, "x", "launcher", 0)
    env = {"HOSTNAME": pod, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    reference = launcher_owner_reference(core, NS, env, ns_file)
    assert reference["uid"] == api.get("pods", NS, pod)["metadata"]["uid"]
    with pytest.raises(TFJobApiError, match="cannot read the launcher pod kubeflow/gone: HTTP 404"):
        owner_reference_from_pod(core, NS, "gone")
