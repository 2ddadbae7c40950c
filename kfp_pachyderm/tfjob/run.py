"""The ``start_tfjob`` step: run a TFJob on input commits and leave its result in a commit.

Order of work, so that nothing half-made survives a failure:

1. Validate every setting, build the TFJob spec and load the cluster configuration (an
   invalid image or replica count, or no Kubernetes configuration, fails here, before anything
   exists; an unreachable API server fails later, and the output commit is finished with it).
2. Pin the input commits (an unknown commit fails here).
3. Open the output commit (in the same-global-ID commit when the output branch has the input
   branch as provenance), recording the provenance.
4. Run the TFJob on Kubernetes (:mod:`.launcher`) or as local processes (:mod:`.local`); the
   replicas read the inputs and the chief writes into the open output commit.
5. Optionally write every replica's log into the commit under ``/logs`` (the seed's
   tf_sample pipeline versions its logs this way).
6. Finish the commit: plainly on success, with the error when the job failed, timed out or was
   cancelled; then fail the step.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from pachyderm_sdk import Client

from kfp_pachyderm.errors import KfpPachydermError, NotFoundError
from kfp_pachyderm.pfs.commits import (
    ensure_output_branch,
    inspect_commit,
    output_commit,
    resolve,
    reusable_result,
)
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance, record_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import INPUT_BUCKETS_ENV, bucket_name, s3_env
from kfp_pachyderm.pfs.transfer import SourceFile, put_files
from kfp_pachyderm.tfjob.env import DATA_MODE_ENV, OUTPUT_ENV, replica_inputs
from kfp_pachyderm.tfjob.local import LocalTFJobExecutor
from kfp_pachyderm.tfjob.outcome import SUCCEEDED, TFJobOutcome
from kfp_pachyderm.tfjob.spec import REPLICA_TYPES, ReplicaSpec, TFJobSpec

log = logging.getLogger(__name__)

DATA_MODES = ("pfs", "s3")
RUNNERS = ("auto", "kubernetes", "local")
TOKEN_ENV = "PACH_PYTHON_AUTH_TOKEN"
# The settings that shape the result (a rerun with equal ones reuses the earlier commit).
RESULT_SETTINGS = ("command", "args", "chief", "workers", "ps", "evaluators", "data_mode")


@dataclass(frozen=True)
class TFJobSettings:
    """Everything the step needs besides the client and the commits; validated by ``spec``."""

    image: str
    command: list[str]
    args: list[str]
    chief: int = 1
    workers: int = 0
    ps: int = 0
    evaluators: int = 0
    gpus_per_replica: int = 0
    cpu: str | None = None
    memory: str | None = None
    namespace: str = "kubeflow"
    timeout_s: float = 3600
    clean_pod_policy: str = "Running"
    ttl_seconds_after_finished: int | None = None
    backoff_limit: int | None = None
    delete_after: bool = True
    data_mode: str = "pfs"
    version_logs: bool = True
    runner: str = "auto"
    token_secret: str | None = None
    token_key: str = "pachd-token"
    service_account: str | None = None
    s3_endpoint: str = ""


def tfjob_name(run_id: str, task_id: str) -> str:
    """A name that a restarted launcher of the same KFP task finds again; random without IDs."""
    if run_id and task_id:
        return "tfjob-" + hashlib.sha256(f"{run_id}/{task_id}".encode()).hexdigest()[:16]
    return "tfjob-" + uuid.uuid4().hex[:16]


def build_spec(settings: TFJobSettings, name: str, env: dict[str, str]) -> TFJobSpec:
    """The TFJob for ``settings``; raises TFJobSpecError naming any bad value."""
    if settings.data_mode not in DATA_MODES:
        raise KfpPachydermError(
            f"invalid data mode {settings.data_mode!r}: one of {', '.join(DATA_MODES)}"
        )
    if settings.runner not in RUNNERS:
        raise KfpPachydermError(f"invalid runner {settings.runner!r}: one of {', '.join(RUNNERS)}")
    if settings.data_mode == "s3" and not settings.s3_endpoint:
        raise KfpPachydermError("data mode s3 needs s3_endpoint (the S3 gateway address)")
    if settings.timeout_s <= 0:
        raise KfpPachydermError(f"invalid timeout {settings.timeout_s!r}: must be positive")
    counts = dict(
        zip(
            REPLICA_TYPES,
            (settings.chief, settings.workers, settings.ps, settings.evaluators),
            strict=True,
        )
    )
    for replica_type, count in counts.items():
        if not isinstance(count, int) or count < 0:
            raise KfpPachydermError(f"invalid {replica_type} replica count {count!r}: must be >= 0")
    replica = ReplicaSpec(
        image=settings.image,
        command=list(settings.command),
        args=list(settings.args),
        cpu=settings.cpu,
        memory=settings.memory,
        gpus=settings.gpus_per_replica,
    )
    secret_env = {}
    if settings.token_secret:
        secret_env[TOKEN_ENV] = (settings.token_secret, settings.token_key)
        if settings.data_mode == "s3":
            secret_env["AWS_ACCESS_KEY_ID"] = (settings.token_secret, settings.token_key)
            secret_env["AWS_SECRET_ACCESS_KEY"] = (settings.token_secret, settings.token_key)
    return TFJobSpec(
        name=name,
        namespace=settings.namespace,
        replicas={t: replica.with_replicas(n) for t, n in counts.items() if n},
        clean_pod_policy=settings.clean_pod_policy,
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        backoff_limit=settings.backoff_limit,
        env=env,
        secret_env=secret_env,
        labels={"app.kubernetes.io/managed-by": "kfp-pachyderm"},
        service_account=settings.service_account,
    )


def _runner(settings: TFJobSettings, log_line: Callable[[str], None]):
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if settings.runner == "local" or (settings.runner == "auto" and not in_cluster):
        return LocalTFJobExecutor(log_line=log_line)
    from kfp_pachyderm.tfjob.launcher import TFJobLauncher, kubernetes_clients

    return TFJobLauncher(*kubernetes_clients(), log=log_line)


def _replica_env(
    client: Client, settings: TFJobSettings, inputs: list[CommitRef], output: CommitRef
) -> dict[str, str]:
    env = {**replica_inputs(inputs), OUTPUT_ENV: str(output), DATA_MODE_ENV: settings.data_mode}
    if settings.data_mode == "s3":
        s3 = s3_env(settings.s3_endpoint, inputs[0], output)
        s3[INPUT_BUCKETS_ENV] = " ".join(bucket_name(ref) for ref in inputs)
        if settings.token_secret:
            s3.pop("AWS_ACCESS_KEY_ID")
            s3.pop("AWS_SECRET_ACCESS_KEY")
        env.update(s3)
    env["PACHD_ADDRESS"] = os.environ.get("PACHD_ADDRESS") or f"grpc://{client.address}"
    return env


def _log_files(outcome: TFJobOutcome) -> list[SourceFile]:
    def chunks(text: str):
        yield text.encode()

    return [
        SourceFile(f"{name}.log", None, partial(chunks, text))
        for name, text in sorted(outcome.replica_logs.items())
    ]


def _commit_of_earlier_attempt(client: Client, target: CommitRef, tfjob: str) -> str | None:
    """The open output commit a previous launcher of this same TFJob left (the launcher pod
    restarted): the job is adopted, so its commit is too."""
    try:
        info = inspect_commit(client, target)
    except NotFoundError:
        return None
    record = read_provenance(info)
    still_open = not info.finished or info.finished.year <= 1970
    if still_open and record is not None and record.extra.get("tfjob") == tfjob:
        return info.commit.id
    return None


def start_tfjob(
    client: Client,
    settings: TFJobSettings,
    inputs: list[CommitRef],
    output: CommitRef,
    record: ProvenanceRecord,
    name: str,
    log_line: Callable[[str], None] = print,
) -> tuple[CommitRef, TFJobOutcome]:
    """Run the TFJob (see the module docstring); return the finished output commit and what
    the job did. Raises KfpPachydermError, after finishing the commit with the error, when the
    job did not succeed."""
    if not inputs:
        raise KfpPachydermError("start_tfjob needs at least one input commit")
    placeholder = {**replica_inputs(inputs), OUTPUT_ENV: "", DATA_MODE_ENV: settings.data_mode}
    build_spec(settings, name, placeholder)  # validate before any side effect
    runner = _runner(settings, log_line)  # no cluster configuration fails here too
    pinned = [resolve(client, ref) for ref in inputs]
    target = ensure_output_branch(client, output)
    record.step = record.step or "start_tfjob"
    record.inputs = [str(ref) for ref in pinned]
    record.image = settings.image
    record.parameters = {
        **record.parameters,
        **{k: str(v) for k, v in sorted(vars(settings).items()) if k in RESULT_SETTINGS},
    }
    reused = reusable_result(client, target, record)
    if reused is not None:
        log_line(f"{reused} was made from {pinned[0]} with the same settings; reusing it")
        return reused, TFJobOutcome(name=name, state=SUCCEEDED)
    record.extra = {**record.extra, "tfjob": f"{settings.namespace}/{name}"}
    adopted = _commit_of_earlier_attempt(client, target, record.extra["tfjob"])
    with output_commit(
        client,
        target,
        same_id_as=adopted or pinned[0].commit,
        provenance=record,
        clean=adopted is None,
    ) as out:
        env = _replica_env(client, settings, pinned, out.ref)
        spec = build_spec(settings, name, env)
        if isinstance(runner, LocalTFJobExecutor):
            previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, lambda *_: runner.cancel())
            try:
                outcome = runner.run(spec, settings.timeout_s, settings.delete_after)
            finally:
                signal.signal(signal.SIGTERM, previous)
        else:
            from kfp_pachyderm.tfjob.launcher import launcher_owner_reference

            owner = launcher_owner_reference(runner.core_api, spec.namespace)
            with runner.handle_sigterm():
                outcome = runner.run(
                    replace(spec, owner=owner), settings.timeout_s, settings.delete_after
                )
        if settings.version_logs:
            put_files(client, out.pfs_commit(), _log_files(outcome), "/logs", replace=False)
        record.extra = {
            **record.extra,
            "tfjob_state": outcome.state,
            "tfjob_conditions": ",".join(c.type for c in outcome.conditions),
        }
        record_provenance(client, out.ref, record)
        if not outcome.succeeded:
            log_line(outcome.failure_report())
            raise KfpPachydermError(f"TFJob {settings.namespace}/{name} ended {outcome.state}")
    return out.ref, outcome
