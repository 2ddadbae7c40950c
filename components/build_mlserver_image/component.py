"""build_mlserver_image: a model commit to an MLServer (Open Inference Protocol) serving image
tagged with its ID, and the KServe and Seldon Core 2 manifests that serve it."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def build_mlserver_image(
    build_commit: dsl.Output[dsl.Artifact],
    image_inference_service: dsl.Output[dsl.Artifact],
    modelcar_inference_service: dsl.Output[dsl.Artifact],
    storage_inference_service: dsl.Output[dsl.Artifact],
    seldon_core2_model: dsl.Output[dsl.Artifact],
    image: str = "",
    input_commit: dsl.Input[dsl.Artifact] = None,
    input_ref: str = "",
    model_path: str = "/model",
    model_name: str = "",
    base_image: str = "",
    builds_repo: str = "mlserver-builds",
    builds_branch: str = "master",
    build_image: bool = True,
    docker_config: str = "",
    plain_http: bool = False,
    namespace: str = "",
    kfp_run_id: str = "",
    kfp_task_id: str = "",
) -> str:
    """Commit the model's MLServer model directory to ``builds_repo``, append it as one
    reproducible layer onto the MLServer base image and push ``<image>:<model commit ID>``
    through the registry API (no Docker daemon); return the image reference with its digest
    ("" when ``build_image`` is false). Also writes the manifests that serve the model commit:
    a KServe InferenceService running the image, one serving the image as a modelcar
    (``storageUri: oci://<image>@<digest>``, with its ServingRuntime), one whose ``storageUri``
    reads the commit through the S3 gateway (no image needed), and a Seldon Core 2 Model doing
    the same.
    ``model_name`` (default: from the image or model repo) names the served model and the
    InferenceService.
    """
    from kfp_pachyderm.bodies.build_mlserver_image import BuildMLServerImageInputs, run

    return run(BuildMLServerImageInputs.of(locals()))
