"""``build_mlserver_image``: a model commit in, an MLServer (Open Inference Protocol) serving
image tagged with its ID out.

The MLServer flavour of :mod:`kfp_pachyderm.modelimage.build`: the base is the library's
MLServer image (``images/mlserver``), the build context is :mod:`.context`, committed to
``mlserver-builds``. Its ``model/`` is a self-contained MLServer model directory, so the same
commit serves from the image (KServe custom container, Seldon Core 2 Server) or straight from
the S3 gateway (KServe ``storageUri``, Seldon Core 2 ``Model``). The layer also holds the
model at ``/models`` as hard links (no bytes twice), so the image is a KServe modelcar too:
``storageUri: oci://<image>@<digest>`` on the base image's ServingRuntime.
"""

from __future__ import annotations

import functools

from pachyderm_sdk import Client

from kfp_pachyderm.kfp.images import image as image_name
from kfp_pachyderm.mlserver.context import MLSERVER_LINKED_MODEL_DIRS, write_mlserver_context
from kfp_pachyderm.modelimage.build import (
    DEFAULT_BUILD,
    BuildOptions,
    ImageFlavor,
    ModelImageBuild,
    build_model_image,
)
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.validation import check_kubernetes_name

STEP = "build_mlserver_image"
DEFAULT_BUILDS_REPO = "mlserver-builds"
IMAGE_RECORD_KEY = "mlserver_image"


def mlserver_base_image(registry: str | None = None) -> str:
    """The MLServer serving base image of this library version (``images/mlserver``)."""
    return image_name("kfp-pachyderm-mlserver", registry)


def build_mlserver_image(
    client: Client,
    model: CommitRef,
    image: str | None,
    model_name: str,
    options: BuildOptions = DEFAULT_BUILD,
) -> ModelImageBuild:
    """Build and push the MLServer image of the SavedModel at ``model`` (default path
    ``/model``) as ``<image>:<model commit ID>``, serving it as ``model_name``
    (``/v2/models/<model_name>/infer``).

    The base image defaults to :func:`mlserver_base_image`, the builds branch to
    ``mlserver-builds@master``; with ``options.push`` false, only the context is committed (for
    serving from the S3 gateway). The rest is as for
    :func:`kfp_pachyderm.modelimage.build.build_model_image`.
    """
    check_kubernetes_name("model name", model_name)
    flavor = ImageFlavor(
        step=STEP,
        builds_repo=DEFAULT_BUILDS_REPO,
        record_key=IMAGE_RECORD_KEY,
        default_base=mlserver_base_image,
        write_context=functools.partial(write_mlserver_context, name=model_name),
        linked_model_dirs=MLSERVER_LINKED_MODEL_DIRS,
    )
    return build_model_image(client, flavor, model, image, options)
