"""build_seldon_image: a model commit to a Seldon Core 1 serving image tagged with its ID."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def build_seldon_image(
    build_commit: dsl.Output[dsl.Artifact],
    seldon_deployment: dsl.Output[dsl.Artifact],
    tfserving_deployment: dsl.Output[dsl.Artifact],
    image: str = "",
    input_commit: dsl.Input[dsl.Artifact] = None,
    input_ref: str = "",
    model_path: str = "/model",
    base_image: str = "",
    builds_repo: str = "seldon-builds",
    builds_branch: str = "master",
    build_image: bool = True,
    docker_config: str = "",
    plain_http: bool = False,
    deployment_name: str = "",
    namespace: str = "",
    s3_secret: str = "pachyderm-s3",
    kfp_run_id: str = "",
    kfp_task_id: str = "",
) -> str:
    """Commit the model's build context to ``builds_repo``, append the SavedModel as one
    reproducible layer onto the Seldon base image and push ``<image>:<model commit ID>``
    through the registry API (no Docker daemon); return the image reference with its digest.
    Also writes a SeldonDeployment for the image and one for the prepackaged
    TENSORFLOW_SERVER reading the model through the S3 gateway.
    """
    from kfp_pachyderm.bodies.build_seldon_image import BuildSeldonImageInputs, run

    return run(BuildSeldonImageInputs.of(locals()))
