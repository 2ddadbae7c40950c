"""SeldonDeployment manifests (``machinelearning.seldon.io/v1``) for a model.

Two forms:

* :func:`image_deployment` serves the image ``build_seldon_image`` pushed, by digest;
* :func:`tfserving_deployment` needs no image build: Seldon's prepackaged ``TENSORFLOW_SERVER``
  downloads ``model/`` of the build-context commit through Pachyderm's S3 gateway
  (``s3://<commit>.<branch>.<repo>/model``, numbered versions as TensorFlow Serving wants), with
  the rclone settings of :func:`s3_gateway_secret` (Seldon Core 1.8+ uses an rclone storage
  initializer).

Both carry the model commit in labels, so ``kubectl get sdep -l kfp-pachyderm/model-commit=<id>``
finds what serves a model.
"""

from __future__ import annotations

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.modelimage.metadata import (
    model_storage_uri,
    object_metadata,
    serving_metadata,
)
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import NO_TOKEN_CREDENTIAL, parse_endpoint

API_VERSION = "machinelearning.seldon.io/v1"


def _deployment(name: str, namespace: str, model: CommitRef, graph: dict, pod: dict | None) -> dict:
    metadata = serving_metadata(name, namespace, model, "SeldonDeployment")
    predictor = {"name": "default", "replicas": 1, "graph": graph}
    if pod is not None:
        predictor["componentSpecs"] = [{"spec": pod}]
    return {
        "apiVersion": API_VERSION,
        "kind": "SeldonDeployment",
        "metadata": metadata,
        "spec": {"protocol": "seldon", "predictors": [predictor]},
    }


def image_deployment(name: str, image: ImageRef, model: CommitRef, namespace: str = "") -> dict:
    """A SeldonDeployment running ``image`` (which must carry its digest) as the model."""
    if not image.digest:
        raise UsageError(f"image {image} has no digest; deploy images by digest")
    container = {"name": "model", "image": str(image)}
    graph = {"name": "model", "type": "MODEL", "endpoint": {"type": "REST"}, "children": []}
    return _deployment(name, namespace, model, graph, {"containers": [container]})


def tfserving_deployment(
    name: str,
    build_commit: CommitRef,
    model: CommitRef,
    secret: str = "pachyderm-s3",
    namespace: str = "",
    signature_name: str = "serving_default",
    model_input: str = "image",
    model_output: str = "output_0",
) -> dict:
    """A SeldonDeployment of the prepackaged ``TENSORFLOW_SERVER`` reading ``model/`` of the
    build-context commit through the S3 gateway, with the rclone settings in ``secret``.
    The input and output names default to those of the library's trainer."""
    graph = {
        "name": "model",
        "type": "MODEL",
        "implementation": "TENSORFLOW_SERVER",
        "modelUri": model_storage_uri(build_commit),
        "envSecretRefName": secret,
        "endpoint": {"type": "REST"},
        "children": [],
        "parameters": [
            {"name": "signature_name", "type": "STRING", "value": signature_name},
            {"name": "model_name", "type": "STRING", "value": "model"},
            {"name": "model_input", "type": "STRING", "value": model_input},
            {"name": "model_output", "type": "STRING", "value": model_output},
        ],
    }
    return _deployment(name, namespace, model, graph, None)


def s3_gateway_secret(name: str, endpoint: str, token: str = "", namespace: str = "") -> dict:
    """The Secret that lets Seldon's rclone storage initializer read ``s3://`` model URIs from
    pachd's S3 gateway at ``endpoint`` (``http://pachd.pachyderm:30600``). pachd takes its
    token as both keys; without auth any value works as long as both keys hold it (pachd checks
    the signature with the access key id as secret). Apply it; do not log it."""
    parsed = parse_endpoint(endpoint)
    key = token or NO_TOKEN_CREDENTIAL
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_metadata(name, namespace),
        "type": "Opaque",
        "stringData": {
            "RCLONE_CONFIG_S3_TYPE": "s3",
            "RCLONE_CONFIG_S3_PROVIDER": "Other",
            "RCLONE_CONFIG_S3_ENV_AUTH": "false",
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": key,
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": key,
            "RCLONE_CONFIG_S3_ENDPOINT": f"{parsed.scheme}://{parsed.netloc}",
        },
    }
