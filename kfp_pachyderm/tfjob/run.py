"""The ``start_tfjob`` step: run a TFJob on input commits and leave its result in a commit.

Order of work, so that nothing half-made survives a failure:

1. Validate every setting, build the TFJob spec and load the cluster configuration (an
   invalid image or replica count, or no Kubernetes configuration, fails here, before anything
   exists; an unreachable API server fails later, and the output commit is finished with it).
2. Pin the input commits (an unknown commit fails here).
3. Open the output commit (the commit an earlier attempt of the same job left open, else a new
   one), recording the provenance.
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
import uuid
from collections.abc import Callable
from functools import partial

from pachyderm_sdk import Client

from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.pfs.commits import (
    open_head,
    output_branch_without_provenance,
    output_commit,
    resolve,
    reusable_result,
)
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, record_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import INPUT_BUCKETS_ENV, bucket_name, s3_env
from kfp_pachyderm.pfs.transfer import SourceFile, put_files
from kfp_pachyderm.tfjob.env import DATA_MODE_ENV, OUTPUT_ENV, replica_inputs
from kfp_pachyderm.tfjob.outcome import SUCCEEDED, TFJobOutcome
from kfp_pachyderm.tfjob.runner import select_runner
from kfp_pachyderm.tfjob.settings import TFJobSettings, build_spec

log = logging.getLogger(__name__)


def tfjob_name(run_id: str, task_id: str) -> str:
    """A name that a restarted launcher of the same KFP task finds again; random without IDs."""
    if run_id and task_id:
        return "tfjob-" + hashlib.sha256(f"{run_id}/{task_id}".encode()).hexdigest()[:16]
    return "tfjob-" + uuid.uuid4().hex[:16]


def _replica_env(
    client: Client, settings: TFJobSettings, inputs: list[CommitRef], output: CommitRef
) -> dict[str, str]:
    env = {**replica_inputs(inputs), OUTPUT_ENV: str(output), DATA_MODE_ENV: settings.data.mode}
    if settings.data.mode == "s3":
        s3 = s3_env(settings.data.s3_endpoint, inputs[0], output)
        s3[INPUT_BUCKETS_ENV] = " ".join(bucket_name(ref) for ref in inputs)
        if settings.data.token_secret:
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
    head = open_head(client, target)
    if head is not None and head[1].extra.get("tfjob") == tfjob:
        return head[0].commit.id
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
        raise UsageError("start_tfjob needs at least one input commit")
    placeholder = {**replica_inputs(inputs), OUTPUT_ENV: "", DATA_MODE_ENV: settings.data.mode}
    build_spec(settings, name, placeholder)  # validate before any side effect
    runner = select_runner(settings.runner, log_line)  # no cluster configuration fails here too
    pinned = [resolve(client, ref) for ref in inputs]
    target = output_branch_without_provenance(client, output)
    record.step = record.step or "start_tfjob"
    record.inputs = [str(ref) for ref in pinned]
    record.image = settings.image
    record.parameters = {**record.parameters, **settings.result_parameters()}
    reused = reusable_result(client, target, record)
    if reused is not None:
        log_line(f"{reused} was made from {pinned[0]} with the same settings; reusing it")
        return reused, TFJobOutcome(name=name, state=SUCCEEDED, reused=True)
    record.extra = {**record.extra, "tfjob": f"{settings.namespace}/{name}"}
    adopted = _commit_of_earlier_attempt(client, target, record.extra["tfjob"])
    with output_commit(
        client,
        target,
        same_id_as=adopted,
        provenance=record,
        start_empty=adopted is None,
    ) as out:
        env = _replica_env(client, settings, pinned, out.ref)
        spec = runner.prepare(build_spec(settings, name, env))
        policy = settings.run_policy
        with runner.handle_sigterm():
            outcome = runner.run(spec, policy.timeout_s, policy.delete_after)
        if settings.version_logs:
            put_files(client, out.pfs_commit(), _log_files(outcome), "/logs")
        record.extra = {
            **record.extra,
            "tfjob_state": outcome.state,
            "tfjob_conditions": ",".join(c.type for c in outcome.conditions),
        }
        record_provenance(client, out.ref, record)
        if not outcome.succeeded:
            log_line(outcome.failure_report())
            raise OperationError(f"TFJob {settings.namespace}/{name} ended {outcome.state}")
    return out.ref, outcome
