"""``build_seldon_image``: a model commit in, a Seldon Core 1 serving image tagged with its ID out.

The Seldon flavour of :mod:`kfp_pachyderm.modelimage.build`: the base is the library's Seldon
image (``images/seldon``), the build context is :mod:`.context` (the SavedModel in TensorFlow
Serving's numbered layout, the model class and a Dockerfile), committed to ``seldon-builds``.
The model must be a TensorFlow SavedModel; that is checked before anything is written.
"""

from __future__ import annotations

from pachyderm_sdk import Client

from kfp_pachyderm.kfp.images import image as image_name
from kfp_pachyderm.modelimage.build import (
    DEFAULT_BUILD,
    BuildOptions,
    ImageFlavor,
    ModelImageBuild,
    build_model_image,
)
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.seldon.context import write_build_context

DEFAULT_BUILDS_REPO = "seldon-builds"
IMAGE_RECORD_KEY = "seldon_image"


def seldon_base_image(registry: str | None = None) -> str:
    """The Seldon serving base image of this library version (``images/seldon``)."""
    return image_name("kfp-pachyderm-seldon", registry)


SELDON = ImageFlavor(
    step="build_seldon_image",
    builds_repo=DEFAULT_BUILDS_REPO,
    record_key=IMAGE_RECORD_KEY,
    default_base=seldon_base_image,
    write_context=write_build_context,
)


def build_seldon_image(
    client: Client, model: CommitRef, image: str | None, options: BuildOptions = DEFAULT_BUILD
) -> ModelImageBuild:
    """Build and push the Seldon image of the SavedModel at ``model`` (default path
    ``/model``) as ``<image>:<model commit ID>``.

    The base image defaults to :func:`seldon_base_image`, the builds branch to
    ``seldon-builds@master``; with ``options.push`` false, only the context is committed (for
    the ``TENSORFLOW_SERVER`` form). The rest is as for
    :func:`kfp_pachyderm.modelimage.build.build_model_image`.
    """
    return build_model_image(client, SELDON, model, image, options)
