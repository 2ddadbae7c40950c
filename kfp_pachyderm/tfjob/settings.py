"""What a TFJob run needs besides the client and the commits, grouped the way the Training
Operator groups it: replicas, resources per replica, run policy, and how the replicas reach
Pachyderm. :func:`build_spec` validates all of it and turns it into a :class:`TFJobSpec`, so a
bad value fails before anything exists.

Example:
    >>> settings = TFJobSettings(image="registry.example.com/ml/trainer:1.0",
    ...                          command=["python", "-m", "kfp_pachyderm.trainer"], args=[],
    ...                          replicas=Replicas(chief=1, workers=2))
    >>> sorted(build_spec(settings, "mnist-1", {}).replicas)
    ['Chief', 'Worker']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.tfjob.spec import REPLICA_TYPES, ReplicaSpec, TFJobSpec
from kfp_pachyderm.validation import DATA_MODES, RUNNERS, check_one_of

TOKEN_ENV = "PACH_PYTHON_AUTH_TOKEN"


@dataclass(frozen=True)
class Replicas:
    """How many replicas of each TFJob replica type to run."""

    chief: int = 1
    workers: int = 0
    ps: int = 0
    evaluators: int = 0

    def counts(self) -> dict[str, int]:
        """The counts by the Training Operator's replica type names."""
        values = (self.chief, self.workers, self.ps, self.evaluators)
        return dict(zip(REPLICA_TYPES, values, strict=True))


@dataclass(frozen=True)
class Resources:
    """What each replica asks for: GPUs, and CPU and memory as Kubernetes quantities."""

    gpus: int = 0
    cpu: str | None = None
    memory: str | None = None


@dataclass(frozen=True)
class RunPolicy:
    """How long the job may run and what happens to it and its pods afterwards."""

    timeout_s: float = 3600
    clean_pod_policy: str = "Running"
    ttl_seconds_after_finished: int | None = None
    backoff_limit: int | None = None
    delete_after: bool = True


@dataclass(frozen=True)
class DataAccess:
    """How replicas read and write Pachyderm: over gRPC (``pfs``) or through the S3 gateway
    (``s3``, at ``s3_endpoint``), with the token from the Secret ``token_secret``."""

    mode: str = "pfs"
    s3_endpoint: str | None = None
    token_secret: str | None = None
    token_key: str = "pachd-token"


@dataclass(frozen=True)
class TFJobSettings:
    """Everything a TFJob run needs besides the client and the commits."""

    image: str
    command: list[str]
    args: list[str]
    replicas: Replicas = field(default_factory=Replicas)
    resources: Resources = field(default_factory=Resources)
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    data: DataAccess = field(default_factory=DataAccess)
    namespace: str = "kubeflow"
    service_account: str | None = None
    version_logs: bool = True
    runner: str = "auto"

    def result_parameters(self) -> dict[str, str]:
        """The settings that shape the result, as recorded in provenance: a rerun with equal
        ones reuses the earlier commit."""
        counts = self.replicas
        return {
            "args": str(self.args),
            "chief": str(counts.chief),
            "command": str(self.command),
            "data_mode": self.data.mode,
            "evaluators": str(counts.evaluators),
            "ps": str(counts.ps),
            "workers": str(counts.workers),
        }


def build_spec(settings: TFJobSettings, name: str, env: dict[str, str]) -> TFJobSpec:
    """The TFJob for ``settings``; raises a KfpPachydermError naming any bad value."""
    data, policy = settings.data, settings.run_policy
    check_one_of("data mode", data.mode, DATA_MODES)
    check_one_of("runner", settings.runner, RUNNERS)
    if data.mode == "s3" and not data.s3_endpoint:
        raise UsageError("data mode s3 needs s3_endpoint (the S3 gateway address)")
    if policy.timeout_s <= 0:
        raise UsageError(f"invalid timeout {policy.timeout_s!r}: must be positive")
    counts = settings.replicas.counts()
    for replica_type, count in counts.items():
        if not isinstance(count, int) or count < 0:
            raise UsageError(f"invalid {replica_type} replica count {count!r}: must be >= 0")
    replica = ReplicaSpec(
        image=settings.image,
        command=list(settings.command),
        args=list(settings.args),
        cpu=settings.resources.cpu,
        memory=settings.resources.memory,
        gpus=settings.resources.gpus,
    )
    secret_env = {}
    if data.token_secret:
        secret_env[TOKEN_ENV] = (data.token_secret, data.token_key)
        if data.mode == "s3":
            secret_env["AWS_ACCESS_KEY_ID"] = (data.token_secret, data.token_key)
            secret_env["AWS_SECRET_ACCESS_KEY"] = (data.token_secret, data.token_key)
    return TFJobSpec(
        name=name,
        namespace=settings.namespace,
        replicas={t: replica.with_replicas(n) for t, n in counts.items() if n},
        clean_pod_policy=policy.clean_pod_policy,
        ttl_seconds_after_finished=policy.ttl_seconds_after_finished,
        backoff_limit=policy.backoff_limit,
        env=env,
        secret_env=secret_env,
        labels={"app.kubernetes.io/managed-by": "kfp-pachyderm"},
        service_account=settings.service_account,
    )
