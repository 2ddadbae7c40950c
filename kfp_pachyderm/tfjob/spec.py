"""A ``kubeflow.org/v1`` TFJob (Kubeflow Training Operator 1.9), built from typed settings.

One :class:`ReplicaSpec` describes any replica type (Chief, Worker, PS, Evaluator); a
:class:`TFJobSpec` holds one per type plus the run policy. ``manifest()`` produces the object
the Training Operator expects: run-policy fields under ``spec.runPolicy``, the container named
``tensorflow``. Everything is validated when built, so bad input fails before anything is
created, with a message naming the bad value.

Example:
    >>> worker = ReplicaSpec(image="registry.example.com/trainer:1.0", replicas=2,
    ...                      command=["python", "-m", "trainer"])
    >>> job = TFJobSpec(name="mnist-1", namespace="kubeflow",
    ...                 replicas={"Chief": worker.with_replicas(1), "Worker": worker})
    >>> job.manifest()["spec"]["tfReplicaSpecs"]["Worker"]["replicas"]
    2
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.validation import check_image, check_kubernetes_name, check_quantity

API_VERSION = "kubeflow.org/v1"
GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "tfjobs", "TFJob"
CONTAINER_NAME = "tensorflow"
REPLICA_TYPES = ("Chief", "Worker", "PS", "Evaluator")
RESTART_POLICIES = ("Never", "OnFailure", "Always", "ExitCode")
CLEAN_POD_POLICIES = ("None", "Running", "All")
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


class TFJobSpecError(UsageError):
    """A TFJob setting that the Training Operator or Kubernetes would refuse."""


@dataclass(frozen=True)
class ReplicaSpec:
    """One replica type: how many, which image and command, and what each one gets.

    Attributes:
        image: the container image (the TF trainer image, for example).
        replicas: how many replicas of this type (at least 1).
        command, args: the container's command and arguments.
        env: extra environment variables.
        cpu, memory: requests and limits, as Kubernetes quantities ("2", "500m", "4Gi").
        gpus: GPUs per replica (a limit on ``gpu_resource``).
        gpu_resource: the extended resource name of the GPU.
        restart_policy: Never, OnFailure, Always or ExitCode.
    """

    image: str
    replicas: int = 1
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cpu: str | None = None
    memory: str | None = None
    gpus: int = 0
    gpu_resource: str = DEFAULT_GPU_RESOURCE
    restart_policy: str = "OnFailure"

    def __post_init__(self) -> None:
        check_image(self.image)
        if not isinstance(self.replicas, int) or self.replicas < 1:
            raise TFJobSpecError(f"invalid replica count {self.replicas!r}: must be at least 1")
        if not isinstance(self.gpus, int) or self.gpus < 0:
            raise TFJobSpecError(f"invalid GPU count {self.gpus!r}: must be 0 or more")
        if self.restart_policy not in RESTART_POLICIES:
            raise TFJobSpecError(
                f"invalid restart policy {self.restart_policy!r}: "
                f"one of {', '.join(RESTART_POLICIES)}"
            )
        for name, quantity in (("cpu", self.cpu), ("memory", self.memory)):
            if quantity is not None:
                check_quantity(name, quantity)

    def with_replicas(self, replicas: int) -> ReplicaSpec:
        """The same spec with another replica count."""
        return replace(self, replicas=replicas)

    def container(
        self,
        extra_env: dict[str, str] | None = None,
        secret_env: dict[str, tuple[str, str]] | None = None,
    ) -> dict:
        """The ``tensorflow`` container of this replica type."""
        resources: dict[str, dict[str, str]] = {}
        for name, quantity in (("cpu", self.cpu), ("memory", self.memory)):
            if quantity is not None:
                resources.setdefault("requests", {})[name] = str(quantity)
                resources.setdefault("limits", {})[name] = str(quantity)
        if self.gpus:
            resources.setdefault("limits", {})[self.gpu_resource] = str(self.gpus)
        env = {**self.env, **(extra_env or {})}
        container: dict = {"name": CONTAINER_NAME, "image": self.image}
        if self.command:
            container["command"] = list(self.command)
        if self.args:
            container["args"] = list(self.args)
        env_list = [{"name": k, "value": v} for k, v in sorted(env.items())]
        env_list += [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for k, (secret, key) in sorted((secret_env or {}).items())
        ]
        if env_list:
            container["env"] = env_list
        if resources:
            container["resources"] = resources
        return container


@dataclass(frozen=True)
class TFJobSpec:
    """A whole TFJob: its name, namespace, replica types and run policy.

    Attributes:
        name, namespace: where the TFJob lives.
        replicas: replica type (Chief, Worker, PS, Evaluator) to its spec.
        clean_pod_policy: which pods the operator deletes when the job ends.
        ttl_seconds_after_finished: when the operator deletes the finished job (None: never).
        backoff_limit: retries before the job is Failed.
        active_deadline_seconds: the operator's own time limit (None: none).
        env: environment for every replica (input and output commits, pachd settings).
        secret_env: environment from Kubernetes Secrets, ``NAME -> (secret, key)``, so tokens
            never appear in the manifest; local runs read them from the process environment.
        labels: labels on the TFJob and its pods.
        service_account: the pods' service account.
        owner: an ownerReference (the launcher pod) so the job goes when the pod goes.
    """

    name: str
    namespace: str
    replicas: dict[str, ReplicaSpec]
    clean_pod_policy: str = "Running"
    ttl_seconds_after_finished: int | None = None
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
    owner: dict | None = None

    def __post_init__(self) -> None:
        check_kubernetes_name("TFJob name", self.name)
        check_kubernetes_name("namespace", self.namespace)
        if not self.replicas:
            raise TFJobSpecError("a TFJob needs at least one replica type (Chief or Worker)")
        unknown = [t for t in self.replicas if t not in REPLICA_TYPES]
        if unknown:
            raise TFJobSpecError(
                f"unknown replica type {unknown[0]!r}: one of {', '.join(REPLICA_TYPES)}"
            )
        if "Chief" not in self.replicas and "Worker" not in self.replicas:
            raise TFJobSpecError("a TFJob needs a Chief or a Worker replica to do the work")
        if "Chief" in self.replicas and self.replicas["Chief"].replicas != 1:
            raise TFJobSpecError(
                f"invalid Chief replica count {self.replicas['Chief'].replicas}: must be exactly 1"
            )
        if self.clean_pod_policy not in CLEAN_POD_POLICIES:
            raise TFJobSpecError(
                f"invalid cleanPodPolicy {self.clean_pod_policy!r}: one of "
                f"{', '.join(CLEAN_POD_POLICIES)}"
            )
        for name, value in (
            ("ttlSecondsAfterFinished", self.ttl_seconds_after_finished),
            ("backoffLimit", self.backoff_limit),
            ("activeDeadlineSeconds", self.active_deadline_seconds),
        ):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise TFJobSpecError(f"invalid {name} {value!r}: must be a whole number >= 0")

    @property
    def master_type(self) -> str:
        """The replica type whose first replica writes the output: Chief, else Worker."""
        return "Chief" if "Chief" in self.replicas else "Worker"

    def manifest(self) -> dict:
        """The TFJob object to create."""
        run_policy: dict = {"cleanPodPolicy": self.clean_pod_policy}
        if self.ttl_seconds_after_finished is not None:
            run_policy["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
        if self.backoff_limit is not None:
            run_policy["backoffLimit"] = self.backoff_limit
        if self.active_deadline_seconds is not None:
            run_policy["activeDeadlineSeconds"] = self.active_deadline_seconds
        replica_specs = {}
        for replica_type in REPLICA_TYPES:
            spec = self.replicas.get(replica_type)
            if spec is None:
                continue
            pod_spec: dict = {"containers": [spec.container(self.env, self.secret_env)]}
            if self.service_account:
                pod_spec["serviceAccountName"] = self.service_account
            template: dict = {"spec": pod_spec}
            if self.labels:
                template["metadata"] = {"labels": dict(self.labels)}
            replica_specs[replica_type] = {
                "replicas": spec.replicas,
                "restartPolicy": spec.restart_policy,
                "template": template,
            }
        metadata: dict = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.owner:
            metadata["ownerReferences"] = [self.owner]
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": {"runPolicy": run_policy, "tfReplicaSpecs": replica_specs},
        }
