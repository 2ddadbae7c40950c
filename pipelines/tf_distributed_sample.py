"""tf_distributed_sample: the seed's tf_sample, a distributed TFJob whose logs are its output."""

from kfp import dsl
from kfp_pachyderm.pipelines.common_tasks import finish_on_exit, pinned_input

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.cluster import use_pachyderm
from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.kfp.images import image
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec, written_by

start_tfjob = load_component("start_tfjob")

LOGS = written_by(start_tfjob, parameter="output_repo")
OUTPUTS = (LOGS,)


@dsl.pipeline(
    name="tf-distributed-sample",
    description="Run a chief, 2 workers and 2 parameter servers on an input commit and version "
    "the job's logs as the output commit (the seed's tf_sample pipeline).",
)
def tf_distributed_sample(
    input_data: str = f"sample_input@{DEFAULT_BRANCH}",
    output_repo: str = "tf_sample_logs",
    trainer_image: str = image("kfp-pachyderm-trainer"),
    namespace: str = "kubeflow",
    runner: str = "auto",
    token_secret: str = "pachd-token",
):
    """Trigger the distributed smoke job with the head of ``input_data``.

    Args:
        input_data: the triggering branch (``repo@branch``); its head is pinned once.
        output_repo: where the logs commit goes (``/logs/<replica>.log``).
        trainer_image: the replicas' image (images/trainer).
        namespace: where the TFJob runs.
        runner: ``auto`` (Kubernetes in a cluster), ``kubernetes`` or ``local``.
        token_secret: the Kubernetes Secret with the pachd token (key ``pachd-token``); optional.
    """
    with finish_on_exit(OUTPUTS, token_secret, output_repo=output_repo):
        pinned = pinned_input(input_data, token_secret)
        use_pachyderm(
            start_tfjob(
                data=pinned.outputs["commit"],
                output_repo=output_repo,
                trainer_image=trainer_image,
                command="python -m kfp_pachyderm.tfjob.sample",
                args="",
                chief=1,
                workers=2,
                ps=2,
                data_mode="pfs",
                namespace=namespace,
                runner=runner,
                token_secret=token_secret,
            ),
            token_secret=token_secret,
        )


SPEC = PipelineSpec(
    pipeline=tf_distributed_sample,
    data="input_data",
    outputs=OUTPUTS,
    result=LOGS,
    demo_data="text",
)
