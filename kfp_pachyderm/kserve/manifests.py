"""KServe manifests for a model commit, served by MLServer over the Open Inference Protocol.

Three ways to serve the same commit:

* :func:`image_inference_service`: the image ``build_mlserver_image`` pushed, by digest, as
  the InferenceService's custom container;
* :func:`modelcar_inference_service`: the same image as a KServe modelcar
  (``storageUri: oci://<image>@<digest>``): KServe runs it beside the library's MLServer
  runtime (:func:`serving_runtime`), which reads the image's ``/models`` (the layer's hard
  links to ``/mnt/models``) through the shared process namespace, with no download. When the
  runtime runs the image's own base, the node pulls only the model layer. Modelcars must be
  enabled in KServe (``enableModelcar`` in the ``storageInitializer`` configuration);
* :func:`storage_inference_service`: no image build at all. KServe's storage initializer
  downloads ``model/`` of the build-context commit through Pachyderm's S3 gateway
  (``storageUri: s3://<commit>.<branch>.<repo>/model``) into the library's MLServer runtime
  (:func:`serving_runtime`), with the credentials of a Secret carrying KServe's S3
  annotations (:func:`storage_secret`) attached to a ServiceAccount
  (:func:`storage_service_account`). The URI names a commit ID, so the served model is
  pinned to it whatever the branch does later.

All carry the model commit in labels (:mod:`kfp_pachyderm.modelimage.metadata`). The Secret
holds the pachd token: apply it (the ``deploy_model`` component does), never write it to a
file, an artifact or a log.
"""

from __future__ import annotations

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.mlserver.settings import GRPC_PORT, HTTP_PORT
from kfp_pachyderm.modelimage.build import IMAGE_MODEL_DIR
from kfp_pachyderm.modelimage.metadata import (
    model_storage_uri,
    object_metadata,
    serving_metadata,
)
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import NO_TOKEN_CREDENTIAL, parse_endpoint
from kfp_pachyderm.validation import check_kubernetes_name

API_VERSION = "serving.kserve.io/v1beta1"
RUNTIME_API_VERSION = "serving.kserve.io/v1alpha1"
RUNTIME_NAME = "kfp-pachyderm-mlserver"
MODEL_FORMAT = "tensorflow"
CONTAINER = "kserve-container"  # the container name KServe expects in a predictor
DEFAULT_SERVICE_ACCOUNT = "kfp-pachyderm-s3"
DEFAULT_SECRET = "kfp-pachyderm-s3"
ANNOTATION_PREFIX = "serving.kserve.io/"
_ENV = [
    {"name": "MLSERVER_HTTP_PORT", "value": str(HTTP_PORT)},
    {"name": "MLSERVER_GRPC_PORT", "value": str(GRPC_PORT)},
    {"name": "MLSERVER_MODELS_DIR", "value": IMAGE_MODEL_DIR},
]
_PORTS = [{"containerPort": HTTP_PORT, "protocol": "TCP"}]


def check_inference_service_name(name: str) -> str:
    """``name`` if KServe accepts it for an InferenceService: a DNS label starting with a
    letter (KServe derives DNS-1035 Service names from it)."""
    check_kubernetes_name("InferenceService name", name)
    if not name[:1].isalpha():
        raise UsageError(f"InferenceService name {name!r} must start with a letter")
    return name


def _inference_service(name: str, namespace: str, model: CommitRef, predictor: dict) -> dict:
    check_inference_service_name(name)
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": serving_metadata(name, namespace, model, "InferenceService"),
        "spec": {"predictor": predictor},
    }


def image_inference_service(
    name: str, image: ImageRef, model: CommitRef, namespace: str = ""
) -> dict:
    """An InferenceService running the MLServer ``image`` (which must carry its digest)."""
    if not image.digest:
        raise UsageError(f"image {image} has no digest; deploy images by digest")
    container = {"name": CONTAINER, "image": str(image), "env": _ENV, "ports": _PORTS}
    return _inference_service(name, namespace, model, {"containers": [container]})


def _v2_model(runtime: str, storage_uri: str) -> dict:
    """A predictor's ``model``: the SavedModel at ``storage_uri`` on ServingRuntime ``runtime``,
    over the Open Inference Protocol."""
    return {
        "modelFormat": {"name": MODEL_FORMAT},
        "runtime": runtime,
        "protocolVersion": "v2",
        "storageUri": storage_uri,
    }


def modelcar_storage_uri(image: ImageRef) -> str:
    """``oci://<repository>@<digest>``: the image as a KServe modelcar, pinned by digest (the
    tag is left out: KServe hands the rest of the URI to the kubelet as the image, and
    ``name:tag@digest`` is not accepted everywhere; the commit is in the labels)."""
    if not image.digest:
        raise UsageError(f"image {image} has no digest; deploy images by digest")
    return f"oci://{image.name}@{image.digest}"


def modelcar_inference_service(
    name: str,
    image: ImageRef,
    model: CommitRef,
    namespace: str = "",
    runtime: str = RUNTIME_NAME,
) -> dict:
    """An InferenceService that serves ``image`` (built by ``build_mlserver_image``, with its
    digest) as a KServe modelcar on the ServingRuntime ``runtime``."""
    check_kubernetes_name("ServingRuntime name", runtime)
    predictor = {"model": _v2_model(runtime, modelcar_storage_uri(image))}
    return _inference_service(name, namespace, model, predictor)


def storage_inference_service(
    name: str,
    build_commit: CommitRef,
    model: CommitRef,
    namespace: str = "",
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
    runtime: str = RUNTIME_NAME,
) -> dict:
    """An InferenceService whose storage initializer downloads ``model/`` of ``build_commit``
    through the S3 gateway into the ServingRuntime ``runtime``, with the credentials attached
    to ``service_account``."""
    check_kubernetes_name("ServiceAccount name", service_account)
    check_kubernetes_name("ServingRuntime name", runtime)
    predictor = {
        "serviceAccountName": service_account,
        "model": _v2_model(runtime, model_storage_uri(build_commit)),
    }
    return _inference_service(name, namespace, model, predictor)


def serving_runtime(image: str, namespace: str = "", name: str = RUNTIME_NAME) -> dict:
    """The ServingRuntime ``name``: the library's MLServer base ``image`` serving the model
    directory KServe puts at ``/mnt/models``. ``autoSelect`` is off, so it serves only the
    InferenceServices that name it."""
    check_kubernetes_name("ServingRuntime name", name)
    ImageRef.parse(image)
    container = {
        "name": CONTAINER,
        "image": image,
        "env": _ENV,
        "ports": _PORTS,
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        },
    }
    return {
        "apiVersion": RUNTIME_API_VERSION,
        "kind": "ServingRuntime",
        "metadata": object_metadata(name, namespace),
        "spec": {
            "supportedModelFormats": [{"name": MODEL_FORMAT, "version": "2", "autoSelect": False}],
            "protocolVersions": ["v2"],
            "containers": [container],
        },
    }


def storage_service_account(
    name: str = DEFAULT_SERVICE_ACCOUNT, secret: str = DEFAULT_SECRET, namespace: str = ""
) -> dict:
    """The ServiceAccount whose attached ``secret`` KServe reads for S3 credentials."""
    check_kubernetes_name("ServiceAccount name", name)
    check_kubernetes_name("Secret name", secret)
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_metadata(name, namespace),
        "secrets": [{"name": secret}],
    }


def storage_secret(
    endpoint: str, token: str = "", name: str = DEFAULT_SECRET, namespace: str = ""
) -> dict:
    """The Secret that lets KServe's storage initializer read ``s3://`` URIs from pachd's S3
    gateway at ``endpoint`` (``http://pachd.pachyderm:30600``): KServe's S3 annotations and
    AWS keys. pachd takes its token as both keys; without auth any value works as long as both
    keys hold it (pachd checks the signature with the access key id as secret)."""
    check_kubernetes_name("Secret name", name)
    parts = parse_endpoint(endpoint)
    https = "1" if parts.scheme == "https" else "0"
    key = token or NO_TOKEN_CREDENTIAL
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            **object_metadata(name, namespace),
            "annotations": {
                f"{ANNOTATION_PREFIX}s3-endpoint": parts.netloc,
                f"{ANNOTATION_PREFIX}s3-usehttps": https,
                f"{ANNOTATION_PREFIX}s3-verifyssl": https,
                f"{ANNOTATION_PREFIX}s3-region": "us-east-1",
            },
        },
        "type": "Opaque",
        "stringData": {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": key},
    }
