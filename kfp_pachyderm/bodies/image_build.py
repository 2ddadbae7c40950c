"""What the two image-building component bodies share: the model commit they read and the
report of a build. Kept apart from :mod:`~kfp_pachyderm.bodies.common` so that bodies which
build no image (the exit handler among them) do not load the OCI client.
"""

from __future__ import annotations

from typing import Any

from kfp import dsl

from kfp_pachyderm.bodies.common import input_commit
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.modelimage.build import ModelImageBuild
from kfp_pachyderm.pfs.refs import CommitRef


def report_image_build(build_commit: dsl.Artifact, result: ModelImageBuild) -> str:
    """Describe the build-context commit in the ``build_commit`` output, print what the build
    reused and pushed, and return the image reference with its digest ("" when none)."""
    image = str(result.image) if result.image else ""
    describe_commit(
        build_commit,
        result.build_commit,
        model_commit=result.model.commit,
        image=image,
        base_image=str(result.base),
        reused=result.reused_context,
    )
    print(f"build context {result.build_commit}{' (reused)' if result.reused_context else ''}")
    if result.push is not None:
        push = result.push
        print(
            f"pushed {image}: {len(push.uploaded)} blobs uploaded, {len(push.mounted)} mounted, "
            f"{len(push.copied)} copied, {len(push.present)} already there, "
            f"in {push.seconds:.1f} s"
        )
    return image


def model_to_build(inputs: Any, component: str) -> CommitRef:
    """The model commit an image-building component reads (its ``input_commit`` or
    ``input_ref``, at ``model_path`` unless the reference names a path), once its ``image`` is
    known to be set where ``build_image`` asks for a push."""
    if inputs.build_image and not inputs.image:
        raise UsageError(
            f"{component} needs image (a repository such as registry.example.com/ml/mnist) "
            "unless build_image is false"
        )
    model = input_commit(inputs.input_commit, inputs.input_ref, component)
    return model if model.path is not None else model.with_path(inputs.model_path)
