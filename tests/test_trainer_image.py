"""The trainer image trains, as a cluster runs it: a TFJob's chief and worker are two containers
of the image this checkout builds, started from the replica specs of the TFJob that the
library's launcher created (image, command, args, environment) with the ``TF_CONFIG`` the
Training Operator gives each replica. They train under MultiWorkerMirroredStrategy, read the
data commit and write the model commit through the local server's S3 gateway, all on the host
network.

No cluster runs here: the real ``kubernetes`` client creates the TFJob on the test API server
(:mod:`tests.k8s_api`), and :class:`TrainingOperator` plays the Training Operator and the
kubelet: it runs each replica as a podman container, feeds the container's output to the pod's
log (which the launcher follows), and sets the TFJob's conditions when the containers end.

1. ``start_tfjob`` in this process, its replicas in trainer-image containers.
2. The compiled ``pipelines/mnist_tfjob.yaml`` under ``kfp.local``'s DockerRunner (through
   :mod:`tests.docker_api`), every step in its image, the start_tfjob step on the Kubernetes
   path, its replicas in trainer-image containers as in 1.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kfp import components, local
from pachyderm_sdk import Client

from kfp_pachyderm import (
    CommitRef,
    LocalPachyderm,
    commit_data,
    inspect_commit,
    read_provenance,
    read_tree,
)
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.tfjob.run import start_tfjob
from kfp_pachyderm.tfjob.settings import DataAccess, Replicas, RunPolicy, TFJobSettings
from kfp_pachyderm.trainer.data import write_mnist_npz

from .conftest import REPO_ROOT, free_port
from .docker_api import DockerApi, host_network_runner
from .images import build_test_images, podman, podman_env
from .k8s_api import K8sApi
from .test_components_in_images import tag_as_the_yaml_names_them

pytestmark = pytest.mark.slow

NS = "kubeflow"
# What the start_tfjob component runs by default (components/start_tfjob).
TRAINER_COMMAND = ["python", "-m", "kfp_pachyderm.trainer"]
# The replica types TF_CONFIG's cluster lists (the Training Operator's genClusterSpec).
CLUSTER_TYPES = ("Chief", "Worker", "PS")
REPLICA_TIMEOUT_S = 480


@dataclass
class Replica:
    """One replica of the TFJob: its pod on the test API server and its container."""

    type: str
    index: int
    pod: str
    container: str
    exit_code: int | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.type.lower()}-{self.index}"

    @property
    def output(self) -> str:
        return "".join(self.lines)


def tf_config(cluster: dict[str, list[str]], replica_type: str, index: int) -> str:
    """TF_CONFIG as the Training Operator (kubeflow.org/v1) writes it: every replica's address
    by lower-case replica type, this replica's type and index, and ``environment: cloud``."""
    task = {"type": replica_type.lower(), "index": index}
    return json.dumps({"cluster": cluster, "task": task, "environment": "cloud"})


def container_env(container: dict) -> dict[str, str]:
    """A pod container's ``env`` as plain values; this operator resolves no ``valueFrom``."""
    env = {}
    for item in container.get("env") or []:
        if "value" not in item:
            raise AssertionError(f"{item['name']} comes from {item.get('valueFrom')}: not run here")
        env[item["name"]] = item["value"]
    return env


class TrainingOperator:
    """Plays the Training Operator and the kubelet for the first TFJob created on ``api``.

    When the launcher has created the TFJob it sets Created, then for each Chief, Worker and PS
    replica adds the pod (with the operator's labels) and starts a container of the replica
    spec's image with ``podman run -d --network host``: the spec's command as the entrypoint and
    its args after the image (as the kubelet does), its env, and TF_CONFIG naming every replica
    at ``127.0.0.1:<free port>`` (on the host network the replicas cannot share a port, as pods
    do). It sets Running, feeds each container's output to its pod's log as it comes, ends each
    pod with its container's exit code, and when every container has exited sets Succeeded, or
    Failed naming the replica that failed. No restarts: a failing replica fails the job.
    ``close()`` removes the containers.
    """

    def __init__(self, api: K8sApi, wait_for_job_s: float):
        self.api = api
        self.wait_for_job_s = wait_for_job_s
        self.namespace = ""
        self.name = ""
        self.manifest: dict = {}
        self.replicas: list[Replica] = []
        self.error: BaseException | None = None
        self._tag = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._play, daemon=True)

    def __enter__(self) -> TrainingOperator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def join(self, timeout: float = REPLICA_TIMEOUT_S) -> None:
        """Wait for the play to end; raise what went wrong in it."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the test operator still runs after {timeout}s")
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Remove every container started, and start no more."""
        with self._lock:
            self._closed = True
            for replica in self.replicas:
                podman("rm", "-f", replica.container, check=False)

    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def _play(self) -> None:
        try:
            created = self.api.wait_for_request("POST", "tfjobs$", timeout=self.wait_for_job_s)
            meta = created[0].body["metadata"]
            self.namespace, self.name = meta["namespace"], meta["name"]
            self.manifest = self.api.tfjob(self.namespace, self.name)
            self.api.transition(self.namespace, self.name, "Created")
            self._start_replicas(self.manifest["spec"]["tfReplicaSpecs"])
            self.api.transition(self.namespace, self.name, "Running")
            followers = [
                threading.Thread(target=self._run_pod, args=(r,), daemon=True)
                for r in self.replicas
            ]
            for follower in followers:
                follower.start()
            for follower in followers:
                follower.join(REPLICA_TIMEOUT_S)
            self._end_job()
        except BaseException as error:  # re-raised in the test by join()
            self.error = error
            message = f"the test operator failed: {error!r}"  # so the launcher stops waiting
            with suppress(KeyError):  # no TFJob, or the launcher deleted it already
                self.api.transition(self.namespace, self.name, "Failed", message=message)

    def _start_replicas(self, specs: dict) -> None:
        ports = {
            (t, i): free_port()
            for t in CLUSTER_TYPES
            if t in specs
            for i in range(specs[t]["replicas"])
        }
        cluster = {
            t.lower(): [f"127.0.0.1:{ports[(t, i)]}" for i in range(specs[t]["replicas"])]
            for t in CLUSTER_TYPES
            if t in specs
        }
        for replica_type, spec in specs.items():
            (container,) = spec["template"]["spec"]["containers"]
            for index in range(spec["replicas"]):
                env = {
                    **container_env(container),
                    "TF_CONFIG": tf_config(cluster, replica_type, index),
                }
                name = f"{self.name}-{replica_type.lower()}-{index}-{self._tag}"
                args = ["run", "-d", "--network", "host", "--name", name]
                for key, value in sorted(env.items()):
                    args += ["-e", f"{key}={value}"]
                if container.get("command"):
                    args += ["--entrypoint", json.dumps(container["command"])]
                with self._lock:
                    if self._closed:
                        raise RuntimeError("the test ended before every replica started")
                    pod = self.api.add_pod(self.namespace, self.name, replica_type, index)
                    self.replicas.append(Replica(replica_type, index, pod, name))
                    podman(*args, container["image"], *container.get("args", []))

    def _run_pod(self, replica: Replica) -> None:
        """Feed the container's output to its pod's log until it exits; end the pod."""
        follow = subprocess.Popen(
            ["podman", "logs", "--follow", replica.container],
            env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for line in follow.stdout:
            replica.lines.append(line)
            self.api.append_log(self.namespace, replica.pod, line)
        follow.wait()
        waited = podman("wait", replica.container, timeout=REPLICA_TIMEOUT_S)
        replica.exit_code = int(waited.stdout.strip().splitlines()[-1])
        phase = "Succeeded" if replica.exit_code == 0 else "Failed"
        self.api.finish_pod(self.namespace, replica.pod, phase, replica.exit_code)

    def _end_job(self) -> None:
        unfinished = [r.name for r in self.replicas if r.exit_code is None]
        failed = [r for r in self.replicas if r.exit_code not in (0, None)]
        if unfinished:
            message = f"replicas {', '.join(unfinished)} did not end in {REPLICA_TIMEOUT_S}s"
            self.api.transition(self.namespace, self.name, "Failed", message=message)
        elif failed:
            message = (
                f"TFJob {self.namespace}/{self.name} has failed because {failed[0].name} "
                f"exited with code {failed[0].exit_code}"
            )
            self.api.transition(self.namespace, self.name, "Failed", message=message)
        else:
            message = f"TFJob {self.namespace}/{self.name} successfully completed."
            self.api.transition(self.namespace, self.name, "Succeeded", message=message)


def write_kubeconfig(path: Path, server_url: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": server_url}}],
                "users": [{"name": "test", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "current-context": "test",
            }
        )
    )
    return path


def commit_mnist(client: Client, tmp_path: Path) -> CommitRef:
    """The MNIST demo data (scikit-learn's digits as mnist.npz) committed to ``mnist@master``."""
    source = write_mnist_npz(tmp_path / "mnist" / "mnist.npz").parent
    return commit_data(client, str(source), CommitRef.parse("mnist@master")).ref


def assert_trained_by_both_replicas(
    client: Client, model: CommitRef, operator: TrainingOperator, tmp_path: Path
) -> None:
    """Both containers exited 0, the chief trained with the worker under MultiWorkerMirrored-
    Strategy, and the model commit holds its SavedModel, metrics and both replicas' logs."""
    assert sorted(r.name for r in operator.replicas) == ["chief-0", "worker-0"]
    assert {r.name: r.exit_code for r in operator.replicas} == {"chief-0": 0, "worker-0": 0}
    chief = operator.replica("chief-0").output
    assert "MultiWorkerMirroredStrategy" in chief and "num_workers = 2" in chief, chief[-4000:]
    out = tmp_path / "model-commit"
    read_tree(client, model, out)
    assert (out / "model" / "saved_model.pb").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["epochs"] == 1
    assert '"replicas": 2' in chief  # the chief's metrics line
    assert "chief wrote the model and metrics" in (out / "logs" / "chief-0.log").read_text()
    assert "worker-0 metrics" in (out / "logs" / "worker-0.log").read_text()


def test_the_trainer_image_trains_a_tfjob_chief_and_worker_through_the_s3_gateway(
    tmp_path: Path, monkeypatch
):
    trainer = build_test_images()["trainer"]
    with (
        LocalPachyderm(tmp_path / "pfs", s3_port=0) as server,
        K8sApi() as api,
        TrainingOperator(api, wait_for_job_s=60) as operator,
    ):
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", api.url)))
        client = Client.from_pachd_address(server.address)
        data = commit_mnist(client, tmp_path)
        settings = TFJobSettings(
            image=trainer.tag,
            command=TRAINER_COMMAND,
            args=["--epochs", "1"],
            replicas=Replicas(chief=1, workers=1),
            run_policy=RunPolicy(timeout_s=REPLICA_TIMEOUT_S),
            data=DataAccess(mode="s3", s3_endpoint=f"http://127.0.0.1:{server.s3_port}"),
            namespace=NS,
            runner="kubernetes",
        )
        lines: list[str] = []
        started = time.monotonic()
        model, outcome = start_tfjob(
            client, settings, [data], CommitRef.parse("mnist-model@master"),
            ProvenanceRecord(), "mnist-in-trainer-image", log_line=lines.append,
        )  # fmt: skip
        operator.join()
        seconds = time.monotonic() - started

        assert outcome.succeeded, "\n".join(lines)
        assert operator.name == "mnist-in-trainer-image"
        spec = operator.manifest["spec"]["tfReplicaSpecs"]
        assert {t: s["replicas"] for t, s in spec.items()} == {"Chief": 1, "Worker": 1}
        chief_container = spec["Chief"]["template"]["spec"]["containers"][0]
        assert chief_container["image"] == trainer.tag
        assert chief_container["command"] + chief_container["args"] == [
            *TRAINER_COMMAND, "--epochs", "1",
        ]  # fmt: skip
        env = container_env(chief_container)
        assert env["KFP_PACHYDERM_DATA_MODE"] == "s3"
        assert env["S3_INPUT_BUCKET"] == f"{data.commit}.master.mnist"
        assert env["S3_OUTPUT_BUCKET"] == f"{model.commit}.master.mnist-model"
        assert_trained_by_both_replicas(client, model, operator, tmp_path)
        assert "[worker-0] " in "\n".join(lines)  # the launcher followed both pods' logs
        record = read_provenance(inspect_commit(client, model))
        assert record.inputs == [str(data)]
        assert record.extra["tfjob"] == f"{NS}/mnist-in-trainer-image"
        assert record.extra["tfjob_state"] == "Succeeded"
        assert api.tfjob(NS, operator.name) is None  # deleted when it ended
        print(f"TFJob of 2 trainer-image containers: {seconds:.1f}s")


@pytest.fixture
def cluster_runner(tmp_path: Path, monkeypatch):
    """kfp.local's DockerRunner (through the test Docker API server) on the host network, with
    a local Pachyderm server and its S3 gateway, and the test Kubernetes API server that the
    steps reach through a kubeconfig under the pipeline root (which DockerRunner mounts at the
    same path) and the pod identity KFP gives executor pods. Yields (client, server, api, docker
    api)."""
    root = tmp_path / "root"
    with (
        LocalPachyderm(tmp_path / "pfs", s3_port=0) as server,
        K8sApi() as api,
        DockerApi() as docker,
    ):
        kubeconfig = write_kubeconfig(root / "kubeconfig", api.url)
        monkeypatch.setenv("DOCKER_HOST", docker.url)
        local.init(
            runner=host_network_runner(
                {
                    "PACHD_ADDRESS": server.address,
                    "KUBECONFIG": str(kubeconfig),
                    "NAMESPACE": NS,
                    "KFP_POD_NAME": "mnist-tfjob-start-tfjob",
                    "KFP_POD_UID": "5c0d7a52-start-tfjob-pod",
                }
            ),
            pipeline_root=str(root),
        )
        yield Client.from_pachd_address(server.address), server, api, docker


def test_mnist_tfjob_runs_every_step_in_its_image_and_its_tfjob_in_trainer_containers(
    cluster_runner, tmp_path: Path
):
    client, server, api, docker = cluster_runner
    names = tag_as_the_yaml_names_them()
    data = commit_mnist(client, tmp_path)
    pipeline = components.load_component_from_file(str(REPO_ROOT / "pipelines/mnist_tfjob.yaml"))
    started = time.monotonic()
    with TrainingOperator(api, wait_for_job_s=300) as operator:
        pipeline(
            data="mnist@master",
            model_repo="mnist-model",
            workers=1,
            epochs=1,
            data_mode="s3",
            s3_endpoint=f"http://127.0.0.1:{server.s3_port}",
            namespace=NS,
            runner="kubernetes",
            token_secret="",
        )
        operator.join()
    seconds = time.monotonic() - started

    ran = {body["Image"] for body in docker.created}
    assert ran == {names["runtime"]}  # every step in the runtime image
    start_step = [b for b in docker.created if "start_tfjob" in " ".join(b["Cmd"])]
    assert len(start_step) == 1
    spec = operator.manifest["spec"]["tfReplicaSpecs"]
    for replica_type in ("Chief", "Worker"):
        (container,) = spec[replica_type]["template"]["spec"]["containers"]
        assert container["image"] == names["trainer"]
        assert container["command"] == TRAINER_COMMAND
        # kfp.local renders the int parameter in the f-string as "1.0"; the trainer takes both.
        assert container["args"] in (["--epochs", "1"], ["--epochs", "1.0"])
    owner = operator.manifest["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "5c0d7a52-start-tfjob-pod"

    model = CommitRef.parse("mnist-model@master")
    info = inspect_commit(client, model)
    model = CommitRef("mnist-model", branch="master", commit=info.commit.id)
    assert_trained_by_both_replicas(client, model, operator, tmp_path)
    record = read_provenance(info)
    assert record.step == "start_tfjob"
    (pinned,) = (CommitRef.parse(ref) for ref in record.inputs)  # resolve_commit's pin
    assert (pinned.repo, pinned.commit) == ("mnist", data.commit)
    assert record.extra["tfjob"] == f"{NS}/{operator.name}"
    assert record.extra["tfjob_state"] == "Succeeded"
    assert record.image == names["trainer"]
    assert api.tfjob(NS, operator.name) is None
    print(f"mnist_tfjob with its TFJob in trainer-image containers: {seconds:.1f}s")
