"""mnist_tfjob: the seeds' MNIST TFJob reading and writing Pachyderm, with provenance."""

from functools import partial

from kfp import dsl
from kfp_pachyderm.pipelines.common_tasks import (
    DEFAULT_S3,
    MLSERVER_BUILDS,
    SELDON_BUILDS,
    finish_on_exit,
    needs_serving_image,
    pinned_input,
    serve_on_kserve,
    trace_and_build_image,
)

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.checks import at_least
from kfp_pachyderm.kfp.cluster import use_pachyderm
from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.kfp.images import image
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec, written_by
from kfp_pachyderm.trainer.report import report_predictions, report_serving

start_tfjob = load_component("start_tfjob")

MODEL = written_by(start_tfjob, parameter="model_repo")
OUTPUTS = (MODEL, SELDON_BUILDS, MLSERVER_BUILDS)


@dsl.pipeline(
    name="mnist-tfjob",
    description="Pin the data commit, train MNIST in a TFJob that reads and writes Pachyderm "
    "(through the S3 gateway by default), trace the model back to its data, and build its "
    "Seldon serving image tagged with the model's commit ID; optionally serve the model commit "
    "on KServe.",
)
def mnist_tfjob(
    data: str = f"mnist@{DEFAULT_BRANCH}",
    commit_source: str = "",
    model_repo: str = "mnist-model",
    trainer_image: str = image("kfp-pachyderm-trainer"),
    workers: int = 2,
    epochs: int = 2,
    data_mode: str = "s3",
    s3_endpoint: str = DEFAULT_S3,
    namespace: str = "kubeflow",
    runner: str = "auto",
    serving_image: str = "",
    push_image: bool = False,
    base_image: str = "",
    registry_secret: str = "registry-credentials",
    token_secret: str = "pachd-token",
    deploy_to_kserve: bool = False,
    kserve_namespace: str = "",
):
    """Train MNIST on ``data`` in a TFJob; the model commit lands on ``model_repo``'s branch.

    Steps find pachd through the ``kfp-pachyderm`` ConfigMap (see
    ``kfp_pachyderm.use_pachyderm``) and the token through ``token_secret``.

    Args:
        data: the training data branch (``repo@branch``, mnist.npz layout); its head is pinned
            once, uncached, so every later step is cached on exact commit IDs.
        commit_source: a path or URL to commit to ``data`` first (idempotent); empty to skip.
        model_repo: where the model commit goes (SavedModel, metrics.json, replica logs).
        trainer_image: the TFJob replicas' image (images/trainer).
        workers: worker replicas besides the chief.
        epochs: training epochs.
        data_mode: ``s3`` (the replicas use Pachyderm's S3 gateway, as in the seeds) or ``pfs``.
        s3_endpoint: the S3 gateway as the replicas reach it.
        namespace: where the TFJob runs.
        runner: ``auto`` (Kubernetes in a cluster), ``kubernetes`` or ``local``.
        serving_image: the Seldon image repository (``registry/path``, no tag); the image is
            pushed as ``<serving_image>:<model commit ID>``.
        push_image: build and push the image; otherwise only its build context is committed
            (to ``seldon-builds``), ready for the prepackaged TENSORFLOW_SERVER.
        base_image: the Seldon base image (images/seldon); empty for this version's default.
        registry_secret: a ``docker-registry`` Secret with push credentials; optional.
        token_secret: the Kubernetes Secret with the pachd token (key ``pachd-token``); optional.
        deploy_to_kserve: finally serve the model commit on KServe with MLServer (an
            InferenceService whose ``storageUri`` reads the commit through ``s3_endpoint``)
            and wait until it is ready; the model is served as ``mnist``.
        kserve_namespace: where the InferenceService goes; empty for the run's namespace.
    """
    with finish_on_exit(OUTPUTS, token_secret, model_repo=model_repo):
        pinned = pinned_input(data, token_secret, commit_source)
        model = use_pachyderm(
            start_tfjob(
                data=pinned.outputs["commit"],
                output_repo=model_repo,
                trainer_image=trainer_image,
                args=f"--epochs {epochs}",
                workers=workers,
                data_mode=data_mode,
                s3_endpoint=s3_endpoint,
                namespace=namespace,
                runner=runner,
                token_secret=token_secret,
            ),
            token_secret=token_secret,
        )
        trace_and_build_image(
            model, serving_image, push_image, base_image, registry_secret, token_secret
        )
        serve_on_kserve(
            model, deploy_to_kserve, kserve_namespace, s3_endpoint, token_secret, model_name="mnist"
        )


SPEC = PipelineSpec(
    pipeline=mnist_tfjob,
    data="data",
    outputs=OUTPUTS,
    result=MODEL,
    demo_data="mnist",
    report=(partial(report_serving, builds=SELDON_BUILDS), report_predictions),
    checks={"epochs": at_least(1)},
    rules=(needs_serving_image,),
)
