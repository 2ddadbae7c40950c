"""The ``build_mlserver_image`` component's body: build and push the MLServer image, and write
the KServe and Seldon Core 2 manifests that serve the model commit."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import (
    ComponentInputs,
    step_record,
    write_manifests,
)
from kfp_pachyderm.bodies.image_build import model_to_build, report_image_build
from kfp_pachyderm.kserve.manifests import (
    check_inference_service_name,
    image_inference_service,
    modelcar_inference_service,
    serving_runtime,
    storage_inference_service,
    storage_service_account,
)
from kfp_pachyderm.mlserver.build import build_mlserver_image
from kfp_pachyderm.modelimage.metadata import resource_name_for
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.seldon.core2 import core2_model, core2_server


@dataclass(frozen=True)
class BuildMLServerImageInputs(ComponentInputs):
    """The parameters of the ``build_mlserver_image`` component."""

    build_commit: dsl.Artifact
    image_inference_service: dsl.Artifact
    modelcar_inference_service: dsl.Artifact
    storage_inference_service: dsl.Artifact
    seldon_core2_model: dsl.Artifact
    image: str
    input_commit: dsl.Artifact | None
    input_ref: str
    model_path: str
    model_name: str
    base_image: str
    builds_repo: str
    builds_branch: str
    build_image: bool
    docker_config: str
    plain_http: bool
    namespace: str
    kfp_run_id: str
    kfp_task_id: str


def run(inputs: BuildMLServerImageInputs) -> str:
    """The component: build and push the image, describe the build commit, write the
    manifests; return the image reference with its digest ("" when ``build_image`` is
    false)."""
    model = model_to_build(inputs, "build_mlserver_image")
    name = check_inference_service_name(
        inputs.model_name
        or resource_name_for(
            ImageRef.parse(inputs.image).repository if inputs.image else model.repo
        )
    )
    client = connect()
    result = build_mlserver_image(
        client,
        model,
        inputs.image,
        name,
        base_image=inputs.base_image,
        builds=CommitRef(inputs.builds_repo, branch=inputs.builds_branch),
        record=step_record(inputs.kfp_run_id, inputs.kfp_task_id),
        docker_config=inputs.docker_config or None,
        plain_http=True if inputs.plain_http else None,
        push=inputs.build_image,
    )
    image = report_image_build(inputs.build_commit, result)
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
