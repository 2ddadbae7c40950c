"""The ``start_tfjob`` component's body: its parameters to grouped TFJob settings, then a run."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import ComponentInputs, input_commit, step_record, unset_to_none
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.images import sibling_image
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.tfjob.run import start_tfjob, tfjob_name
from kfp_pachyderm.tfjob.settings import DataAccess, Replicas, Resources, RunPolicy, TFJobSettings


@dataclass(frozen=True)
class StartTFJobInputs(ComponentInputs):
    """The parameters of the ``start_tfjob`` component."""

    output_repo: str
    commit: dsl.Artifact
    input_commit: dsl.Artifact | None
    input_ref: str
    extra_input_refs: str
    trainer_image: str
    command: str
    args: str
    output_branch: str
    chief: int
    workers: int
    ps: int
    evaluators: int
    gpus_per_replica: int
    cpu: str
    memory: str
    namespace: str
    timeout_seconds: int
    clean_pod_policy: str
    ttl_seconds_after_finished: int
    backoff_limit: int
    delete_after: bool
    data_mode: str
    s3_endpoint: str
    version_logs: bool
    runner: str
    token_secret: str
    service_account: str
    kfp_run_id: str
    kfp_task_id: str

    def settings(self) -> TFJobSettings:
        """The grouped TFJob settings these parameters describe."""
        return TFJobSettings(
            image=self.trainer_image or sibling_image("kfp-pachyderm-trainer"),
            command=shlex.split(self.command),
            args=shlex.split(self.args),
            replicas=Replicas(self.chief, self.workers, self.ps, self.evaluators),
            resources=Resources(
                self.gpus_per_replica, unset_to_none(self.cpu), unset_to_none(self.memory)
            ),
            run_policy=RunPolicy(
                timeout_s=self.timeout_seconds,
                clean_pod_policy=self.clean_pod_policy,
                ttl_seconds_after_finished=unset_to_none(self.ttl_seconds_after_finished),
                backoff_limit=unset_to_none(self.backoff_limit),
                delete_after=self.delete_after,
            ),
            data=DataAccess(
                mode=self.data_mode,
                s3_endpoint=self.s3_endpoint,
                token_secret=unset_to_none(self.token_secret),
            ),
            namespace=self.namespace,
            service_account=unset_to_none(self.service_account),
            version_logs=self.version_logs,
            runner=self.runner,
        )

    def inputs(self) -> list[CommitRef]:
        """The input commit, then each of ``extra_input_refs`` (comma-separated)."""
        first = input_commit(self.input_commit, self.input_ref, "start_tfjob")
        listed = (ref.strip() for ref in self.extra_input_refs.split(","))
        return [first, *(CommitRef.parse(ref) for ref in listed if ref)]


def run(inputs: StartTFJobInputs) -> str:
    """Run the TFJob on the input commits; return the output commit ID."""
    settings = inputs.settings()
    record = step_record(
        inputs.kfp_run_id,
        inputs.kfp_task_id,
        parameters={"command": inputs.command, "args": inputs.args},
    )
    name = tfjob_name(record.kfp_run_id, record.kfp_task_id or "start_tfjob")
    target = CommitRef(inputs.output_repo, branch=inputs.output_branch)
    ref, outcome = start_tfjob(connect(), settings, inputs.inputs(), target, record, name)
    describe_commit(
        inputs.commit, ref, tfjob=name, tfjob_state=outcome.state, reused=outcome.reused
    )
    return ref.commit
