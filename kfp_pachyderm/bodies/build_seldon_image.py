"""The ``build_seldon_image`` component's body: build and push the serving image, and write
the SeldonDeployment manifests."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import write_manifests
from kfp_pachyderm.bodies.image_build import ImageBuildInputs, report_image_build
from kfp_pachyderm.kfp.checks import check_kubernetes_object_name
from kfp_pachyderm.kfp.contract import Contract, optional, output, parameter
from kfp_pachyderm.modelimage.metadata import resource_name_for
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.seldon.build import DEFAULT_BUILDS_REPO, build_seldon_image
from kfp_pachyderm.seldon.deploy import image_deployment, tfserving_deployment


@dataclass(frozen=True, kw_only=True)
class BuildSeldonImageInputs(ImageBuildInputs):
    """The parameters of the ``build_seldon_image`` component."""

    seldon_deployment: dsl.Artifact = output("a SeldonDeployment running the image")
    tfserving_deployment: dsl.Artifact = output(
        "a SeldonDeployment of the prepackaged TENSORFLOW_SERVER reading the build commit "
        "through the S3 gateway"
    )
    builds_repo: str = parameter("where the build context is committed", DEFAULT_BUILDS_REPO)
    deployment_name: str | None = optional(
        "the SeldonDeployments' name; not set: the image's (else the model repo's) last path part",
        check=check_kubernetes_object_name,
    )
    s3_secret: str = parameter(
        "the rclone Secret the `TENSORFLOW_SERVER` form reads the model with",
        "pachyderm-s3",
        check=check_kubernetes_object_name,
    )


def run(inputs: BuildSeldonImageInputs) -> str:
    """The component: build and push the image, describe the build commit, write the two
    SeldonDeployment manifests; return the image reference with its digest ("" when
    ``build_image`` is false)."""
    model = inputs.model_to_build("build_seldon_image")
    options = inputs.build_options(inputs.builds_repo)
    result = build_seldon_image(connect(), model, inputs.image, options)
    image = report_image_build(inputs.commit, result)
    name = inputs.deployment_name or resource_name_for(
        result.image.repository if result.image else result.model.repo
    )
    namespace = inputs.namespace
    served = [image_deployment(name, result.image, result.model, namespace)] if image else []
    write_manifests(inputs.seldon_deployment, served, "no image was built (build_image=false)")
    prepackaged = tfserving_deployment(
        name, result.build_commit, result.model, inputs.s3_secret, namespace
    )
    write_manifests(inputs.tfserving_deployment, [prepackaged])
    for artifact in (inputs.seldon_deployment, inputs.tfserving_deployment):
        artifact.metadata.update({"name": name, "model_commit": result.model.commit})
    inputs.seldon_deployment.metadata["image"] = image
    return image


CONTRACT = Contract(
    "build_seldon_image",
    BuildSeldonImageInputs,
    run,
    """Commit the model's build context to ``builds_repo``, append the SavedModel as one
    reproducible layer onto the Seldon base image and push ``<image>:<model commit ID>``
    through the registry API (no Docker daemon); return the image reference with its digest.
    Also writes a SeldonDeployment for the image and one for the prepackaged
    TENSORFLOW_SERVER reading the model through the S3 gateway.
    """,
)
