"""gpu_check: the seed's GPU pipeline, what TensorFlow sees on a GPU node, as a commit."""

from kfp import dsl
from kfp_pachyderm.pipelines.common_tasks import finish_on_exit, pinned_input

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.cluster import use_pachyderm, with_gpu
from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec, written_by

gpu_check_component = load_component("gpu_check")

REPORT = written_by(gpu_check_component, parameter="output_repo")
OUTPUTS = (REPORT,)


@dsl.pipeline(
    name="gpu-check",
    description="Record the devices TensorFlow sees on a GPU node next to the input commit's "
    "listing.",
)
def gpu_check(
    input_data: str = f"images@{DEFAULT_BRANCH}",
    output_repo: str = "gpu-check",
    token_secret: str = "pachd-token",
):
    """Run gpu_check with one GPU on the head of ``input_data``.

    Args:
        input_data: any branch (``repo@branch``); its head is pinned once.
        output_repo: where the report commit goes (devices.json, input-listing.txt).
        token_secret: the Kubernetes Secret with the pachd token (key ``pachd-token``); optional.
    """
    with finish_on_exit(OUTPUTS, token_secret, output_repo=output_repo):
        pinned = pinned_input(input_data, token_secret)
        with_gpu(
            use_pachyderm(
                gpu_check_component(data=pinned.outputs["commit"], output_repo=output_repo),
                token_secret=token_secret,
            ),
            count=1,
        )


SPEC = PipelineSpec(
    pipeline=gpu_check, data="input_data", outputs=OUTPUTS, result=REPORT, demo_data="mnist"
)
