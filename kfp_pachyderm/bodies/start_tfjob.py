"""The ``start_tfjob`` component's body: its parameters to grouped TFJob settings, then a run."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.checks import (
    at_least,
    check_endpoint_url,
    check_image_reference,
    check_kubernetes_object_name,
    one_of,
)
from kfp_pachyderm.kfp.contract import Contract, OutputCommit, commit_input, optional, parameter
from kfp_pachyderm.kfp.images import sibling_image
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.tfjob.run import start_tfjob, tfjob_name
from kfp_pachyderm.tfjob.settings import DataAccess, Replicas, Resources, RunPolicy, TFJobSettings
from kfp_pachyderm.tfjob.spec import CLEAN_POD_POLICIES
from kfp_pachyderm.validation import DATA_MODES, RUNNERS


@dataclass(frozen=True, kw_only=True)
class StartTFJobInputs(OutputCommit):
    """The parameters of the ``start_tfjob`` component."""

    data: CommitRef = commit_input("the input commit")
    extra_input_refs: str = parameter(
        "more input commits, comma-separated references; each is pinned and recorded in the "
        "provenance",
        "",
    )
    trainer_image: str | None = optional(
        "the replicas' image; not set: this version's `kfp-pachyderm-trainer` from the registry of "
        "the step's own image",
        check=check_image_reference,
    )
    command: str = parameter(
        "the replicas' command (shell-split)", "python -m kfp_pachyderm.trainer"
    )
    args: str = parameter("the replicas' arguments (shell-split)", "--epochs 2")
    chief: int = parameter(
        "Chief replicas (one typed replica spec is reused for all types)", 1, check=at_least(0)
    )
    workers: int = parameter("Worker replicas", 2, check=at_least(0))
    ps: int = parameter("parameter-server replicas", 0, check=at_least(0))
    evaluators: int = parameter("Evaluator replicas (0 or 1)", 0, check=at_least(0))
    gpus_per_replica: int = parameter("`nvidia.com/gpu` per replica", 0, check=at_least(0))
    cpu: str | None = optional("CPU request and limit per replica, e.g. `2`")
    memory: str | None = optional("memory request and limit per replica, e.g. `4Gi`")
    namespace: str = parameter(
        "where the TFJob runs", "kubeflow", check=check_kubernetes_object_name
    )
    timeout_seconds: int = parameter(
        "the job is deleted and the step fails after this", 3600, check=at_least(1)
    )
    clean_pod_policy: str = parameter(
        "`spec.runPolicy.cleanPodPolicy`: `None`, `Running` or `All`",
        "Running",
        check=one_of(*CLEAN_POD_POLICIES),
    )
    ttl_seconds_after_finished: int | None = optional("`spec.runPolicy.ttlSecondsAfterFinished`")
    backoff_limit: int | None = optional("`spec.runPolicy.backoffLimit`")
    delete_after: bool = parameter("delete the TFJob when it ends", True)
    data_mode: str = parameter(
        "replicas read through the gRPC API (`pfs`) or the S3 gateway (`s3`)",
        "pfs",
        check=one_of(*DATA_MODES),
    )
    s3_endpoint: str | None = optional(
        "pachd's S3 gateway as the replicas reach it; needed with `data_mode=s3`",
        check=check_endpoint_url,
    )
    version_logs: bool = parameter("write replica logs into the output commit under `/logs/`", True)
    runner: str = parameter(
        "`kubernetes`, `local`, or `auto` (Kubernetes when in a cluster)",
        "auto",
        check=one_of(*RUNNERS),
    )
    token_secret: str | None = optional(
        "the pachd token Secret (key `pachd-token`) the replicas read",
        check=check_kubernetes_object_name,
    )
    service_account: str | None = optional(
        "the replicas' service account", check=check_kubernetes_object_name
    )

    def settings(self) -> TFJobSettings:
        """The grouped TFJob settings these parameters describe."""
        return TFJobSettings(
            image=self.trainer_image or sibling_image("kfp-pachyderm-trainer"),
            command=shlex.split(self.command),
            args=shlex.split(self.args),
            replicas=Replicas(self.chief, self.workers, self.ps, self.evaluators),
            resources=Resources(self.gpus_per_replica, self.cpu, self.memory),
            run_policy=RunPolicy(
                timeout_s=self.timeout_seconds,
                clean_pod_policy=self.clean_pod_policy,
                ttl_seconds_after_finished=self.ttl_seconds_after_finished,
                backoff_limit=self.backoff_limit,
                delete_after=self.delete_after,
            ),
            data=DataAccess(
                mode=self.data_mode,
                s3_endpoint=self.s3_endpoint,
                token_secret=self.token_secret,
            ),
            namespace=self.namespace,
            service_account=self.service_account,
            version_logs=self.version_logs,
            runner=self.runner,
        )

    def inputs(self) -> list[CommitRef]:
        """The input commit, then each of ``extra_input_refs`` (comma-separated)."""
        listed = (ref.strip() for ref in self.extra_input_refs.split(","))
        return [self.data, *(CommitRef.parse(ref) for ref in listed if ref)]


def run(inputs: StartTFJobInputs) -> str:
    """Run the TFJob on the input commits; return the output commit ID."""
    settings = inputs.settings()
    record = inputs.record(parameters={"command": inputs.command, "args": inputs.args})
    name = tfjob_name(record.kfp_run_id, record.kfp_task_id or "start_tfjob")
    ref, outcome = start_tfjob(connect(), settings, inputs.inputs(), inputs.target(), record, name)
    describe_commit(
        inputs.commit, ref, tfjob=name, tfjob_state=outcome.state, reused=outcome.reused
    )
    return ref.commit


CONTRACT = Contract(
    "start_tfjob",
    StartTFJobInputs,
    run,
    """Run a TFJob whose replicas read the input commit (and any ``extra_input_refs``,
    comma-separated commit references) and whose chief writes the output commit; return the
    output commit ID. A failed, timed-out or cancelled job fails the step
    after printing the master replica's logs and the job's events, and the output commit is
    finished with the error. ``-1`` and ``""`` mean "not set"; an unset ``trainer_image`` is
    this library version's trainer image from the registry this step's own image came from.
    """,
)
