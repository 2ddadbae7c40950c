"""start_tfjob: run a kubeflow.org/v1 TFJob on input commits; its result is a new commit."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def start_tfjob(
    output_repo: str,
    commit: dsl.Output[dsl.Artifact],
    input_commit: dsl.Input[dsl.Artifact] = None,
    input_ref: str = "",
    extra_input_refs: str = "",
    trainer_image: str = "",
    command: str = "python -m kfp_pachyderm.trainer",
    args: str = "--epochs 2",
    output_branch: str = "master",
    chief: int = 1,
    workers: int = 2,
    ps: int = 0,
    evaluators: int = 0,
    gpus_per_replica: int = 0,
    cpu: str = "",
    memory: str = "",
    namespace: str = "kubeflow",
    timeout_seconds: int = 3600,
    clean_pod_policy: str = "Running",
    ttl_seconds_after_finished: int = -1,
    backoff_limit: int = -1,
    delete_after: bool = True,
    data_mode: str = "pfs",
    s3_endpoint: str = "",
    version_logs: bool = True,
    runner: str = "auto",
    token_secret: str = "",
    service_account: str = "",
    kfp_run_id: str = "",
    kfp_task_id: str = "",
) -> str:
    """Run a TFJob whose replicas read the input commit (and any ``extra_input_refs``,
    comma-separated commit references) and whose chief writes the output commit; return the
    output commit ID. A failed, timed-out or cancelled job fails the step
    after printing the master replica's logs and the job's events, and the output commit is
    finished with the error. ``-1`` means "not set" for the run-policy numbers; an empty
    ``trainer_image`` is this library version's trainer image from the registry this step's
    own image came from.
    """
    from kfp_pachyderm.bodies.start_tfjob import StartTFJobInputs, run

    return run(StartTFJobInputs.of(locals()))
