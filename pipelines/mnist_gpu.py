"""mnist_gpu: MNIST trained inside the pipeline's own pod, on a GPU, with provenance."""

from kfp import dsl
from kfp_pachyderm.pipelines.common_tasks import finish_on_exit, pinned_input

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.cluster import use_pachyderm, with_gpu
from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec, written_by
from kfp_pachyderm.trainer.report import report_predictions

train = load_component("train")
inspect_provenance = load_component("inspect_provenance")

MODEL = written_by(train, parameter="model_repo")
OUTPUTS = (MODEL,)


@dsl.pipeline(
    name="mnist-gpu",
    description="Pin the data commit, train MNIST on a GPU in the pipeline pod, and trace the "
    "model back to its data.",
)
def mnist_gpu(
    data: str = f"mnist@{DEFAULT_BRANCH}",
    commit_source: str = "",
    model_repo: str = "mnist-model-gpu",
    epochs: int = 5,
    batch_size: int = 128,
    token_secret: str = "pachd-token",
):
    """Train MNIST on ``data`` with one GPU; the model commit lands on ``model_repo``'s branch.

    Args:
        data: the training data branch (``repo@branch``, mnist.npz layout), pinned once.
        commit_source: a path or URL to commit to ``data`` first (idempotent); empty to skip.
        model_repo: where the model commit goes (SavedModel, metrics.json with the device).
        epochs, batch_size: training settings.
        token_secret: the Kubernetes Secret with the pachd token (key ``pachd-token``); optional.

    The GPU request is fixed at compile time (one ``nvidia.com/gpu``); recompile with another
    ``with_gpu`` call for other accelerators or node selectors.
    """
    with finish_on_exit(OUTPUTS, token_secret, model_repo=model_repo):
        pinned = pinned_input(data, token_secret, commit_source)
        model = with_gpu(
            use_pachyderm(
                train(
                    data=pinned.outputs["commit"],
                    output_repo=model_repo,
                    epochs=epochs,
                    batch_size=batch_size,
                ),
                token_secret=token_secret,
            ),
            count=1,
        )
        use_pachyderm(inspect_provenance(commit=model.outputs["commit"]), token_secret=token_secret)


SPEC = PipelineSpec(
    pipeline=mnist_gpu,
    data="data",
    outputs=OUTPUTS,
    result=MODEL,
    demo_data="mnist",
    report=(report_predictions,),
)
