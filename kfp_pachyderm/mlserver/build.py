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
from pathlib import Path

from pachyderm_sdk import Client

from kfp_pachyderm.kfp.images import image as image_name
from kfp_pachyderm.mlserver.context import MLSERVER_LINKED_MODEL_DIRS, write_mlserver_context
from kfp_pachyderm.modelimage.build import ImageFlavor, ModelImageBuild, build_model_image
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
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
    image: str,
    model_name: str,
    base_image: str = "",
    *,
    builds: CommitRef | None = None,
    record: ProvenanceRecord | None = None,
    docker_config: str | Path | None = None,
    plain_http: bool | None = None,
    push: bool = True,
    gzip_level: int = 6,
) -> ModelImageBuild:
    """Build and push the MLServer image of the SavedModel at ``model`` (default path
    ``/model``) as ``<image>:<model commit ID>``, serving it as ``model_name``
    (``/v2/models/<model_name>/infer``).

    ``base_image`` defaults to :func:`mlserver_base_image`; ``builds`` to
    ``mlserver-builds@master``. With ``push`` false, only the context is committed (for
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
    return build_model_image(
        client,
        flavor,
        model,
        image,
        base_image,
        builds=builds,
        record=record,
        docker_config=docker_config,
        plain_http=plain_http,
        push=push,
        gzip_level=gzip_level,
    )
