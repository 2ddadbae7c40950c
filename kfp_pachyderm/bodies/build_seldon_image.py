"""The ``build_seldon_image`` component's body: build and push the serving image, and write
the SeldonDeployment manifests."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.bodies.common import (
    ComponentInputs,
    step_record,
    write_manifests,
)
from kfp_pachyderm.bodies.image_build import model_to_build, report_image_build
from kfp_pachyderm.modelimage.metadata import resource_name_for
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.seldon.build import build_seldon_image
from kfp_pachyderm.seldon.deploy import image_deployment, tfserving_deployment


@dataclass(frozen=True)
class BuildSeldonImageInputs(ComponentInputs):
    """The parameters of the ``build_seldon_image`` component."""

    build_commit: dsl.Artifact
    seldon_deployment: dsl.Artifact
    tfserving_deployment: dsl.Artifact
    image: str
    input_commit: dsl.Artifact | None
    input_ref: str
    model_path: str
    base_image: str
    builds_repo: str
    builds_branch: str
    build_image: bool
    docker_config: str
    plain_http: bool
    deployment_name: str
    namespace: str
    s3_secret: str
    kfp_run_id: str
    kfp_task_id: str


def run(inputs: BuildSeldonImageInputs) -> str:
    """The component: build and push the image, describe the build commit, write the two
    SeldonDeployment manifests; return the image reference with its digest ("" when
    ``build_image`` is false)."""
    model = model_to_build(inputs, "build_seldon_image")
    builds = CommitRef(inputs.builds_repo, branch=inputs.builds_branch)
    record = step_record(inputs.kfp_run_id, inputs.kfp_task_id)
    client = connect()
    result = build_seldon_image(
        client,
        model,
        inputs.image,
        base_image=inputs.base_image,
        builds=builds,
        record=record,
        docker_config=inputs.docker_config or None,
        plain_http=True if inputs.plain_http else None,
        push=inputs.build_image,
    )
    image = report_image_build(inputs.build_commit, result)
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
