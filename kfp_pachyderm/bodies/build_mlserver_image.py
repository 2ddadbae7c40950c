"""The ``build_mlserver_image`` component's body: build and push the MLServer image, and write
the KServe and Seldon Core 2 manifests that serve the model commit."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import write_manifests
from kfp_pachyderm.bodies.image_build import ImageBuildInputs, report_image_build
from kfp_pachyderm.kfp.contract import Contract, optional, output, parameter
from kfp_pachyderm.kserve.manifests import (
    check_inference_service_name,
    image_inference_service,
    modelcar_inference_service,
    serving_runtime,
    storage_inference_service,
    storage_service_account,
)
from kfp_pachyderm.mlserver.build import DEFAULT_BUILDS_REPO, build_mlserver_image
from kfp_pachyderm.modelimage.metadata import resource_name_for
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.seldon.core2 import core2_model, core2_server


@dataclass(frozen=True, kw_only=True)
class BuildMLServerImageInputs(ImageBuildInputs):
    """The parameters of the ``build_mlserver_image`` component."""

    image_inference_service: dsl.Artifact = output("a KServe InferenceService running the image")
    modelcar_inference_service: dsl.Artifact = output(
        "a KServe InferenceService serving the image as a modelcar, with its ServingRuntime"
    )
    storage_inference_service: dsl.Artifact = output(
        "a KServe InferenceService reading the build commit through the S3 gateway"
    )
    seldon_core2_model: dsl.Artifact = output(
        "a Seldon Core 2 Model reading the build commit through the S3 gateway"
    )
    builds_repo: str = parameter("where the build context is committed", DEFAULT_BUILDS_REPO)
    model_name: str | None = optional(
        "the served model's name (`/v2/models/<name>/infer`) and the InferenceService's; not set: "
        "the image's (else the model repo's) last path part",
    )


def run(inputs: BuildMLServerImageInputs) -> str:
    """The component: build and push the image, describe the build commit, write the
    manifests; return the image reference with its digest ("" when ``build_image`` is
    false)."""
    model = inputs.model_to_build("build_mlserver_image")
    name = check_inference_service_name(
        inputs.model_name
        or resource_name_for(
            ImageRef.parse(inputs.image).repository if inputs.image else model.repo
        )
    )
    options = inputs.build_options(inputs.builds_repo)
    result = build_mlserver_image(connect(), model, inputs.image, name, options)
    image = report_image_build(inputs.commit, result)
    namespace = inputs.namespace
    served = [image_inference_service(name, result.image, result.model, namespace)] if image else []
    write_manifests(
        inputs.image_inference_service, served, "no image was built (build_image=false)"
    )
    modelcar = (
        [
            serving_runtime(str(result.base), namespace),
            modelcar_inference_service(name, result.image, result.model, namespace),
        ]
        if image
        else []
    )
    write_manifests(
        inputs.modelcar_inference_service, modelcar, "no image was built (build_image=false)"
    )
    write_manifests(
        inputs.storage_inference_service,
        [
            storage_service_account(namespace=namespace),
            serving_runtime(str(result.base), namespace),
            storage_inference_service(name, result.build_commit, result.model, namespace),
        ],
    )
    write_manifests(
        inputs.seldon_core2_model,
        [
            core2_server(str(result.base), namespace),
            core2_model(name, result.build_commit, result.model, namespace),
        ],
    )
    for artifact in (
        inputs.image_inference_service,
        inputs.modelcar_inference_service,
        inputs.storage_inference_service,
        inputs.seldon_core2_model,
    ):
        artifact.metadata.update({"name": name, "model_commit": result.model.commit})
    inputs.image_inference_service.metadata["image"] = image
    inputs.modelcar_inference_service.metadata["image"] = image
    return image


CONTRACT = Contract(
    "build_mlserver_image",
    BuildMLServerImageInputs,
    run,
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
    """,
)
