"""Seldon Core 2 manifests (``mlops.seldon.io/v1alpha1``) serving a model commit with MLServer.

Seldon Core 2 schedules a ``Model`` onto a ``Server`` whose capabilities include all of the
model's ``requirements``. The library's model directory needs TensorFlow beside MLServer, so
:func:`core2_server` runs the library's MLServer image as a Server advertising
:data:`CAPABILITY`, and :func:`core2_model` requires it. The Model's ``storageUri`` names
``model/`` of the build-context commit through pachd's S3 gateway; Seldon's agent downloads it
with rclone, configured by the Secret of :func:`rclone_secret` (one rclone remote named ``s3``,
the prefix of the URI). The URI names a commit ID, so the served model is pinned to it.

Seldon Core 2 is licensed under the Business Source License 1.1 (BSL 1.1).
"""

from __future__ import annotations

import json

from kfp_pachyderm.modelimage.metadata import (
    model_storage_uri,
    object_metadata,
    serving_metadata,
)
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import NO_TOKEN_CREDENTIAL, parse_endpoint
from kfp_pachyderm.validation import check_kubernetes_name

API_VERSION = "mlops.seldon.io/v1alpha1"
CAPABILITY = "kfp-pachyderm-savedmodel"
DEFAULT_SERVER = "kfp-pachyderm-mlserver"
DEFAULT_RCLONE_SECRET = "kfp-pachyderm-rclone"
RCLONE_REMOTE = "s3"


def core2_model(
    name: str,
    build_commit: CommitRef,
    model: CommitRef,
    namespace: str = "",
    secret: str = DEFAULT_RCLONE_SECRET,
    memory: str = "",
) -> dict:
    """A Model serving ``model/`` of ``build_commit`` (the model directory
    ``build_mlserver_image`` committed) on a Server with :data:`CAPABILITY`; ``memory`` (for
    example ``2Gi``) is what the scheduler reserves for it."""
    check_kubernetes_name("Secret name", secret)
    spec: dict = {
        "storageUri": model_storage_uri(build_commit),
        "requirements": [CAPABILITY],
        "secretName": secret,
    }
    if memory:
        spec["memory"] = memory
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": serving_metadata(name, namespace, model, "Model"),
        "spec": spec,
    }


def core2_server(image: str, namespace: str = "", name: str = DEFAULT_SERVER) -> dict:
    """The Server ``name`` running the library's MLServer ``image`` on Seldon's ``mlserver``
    ServerConfig, advertising :data:`CAPABILITY` besides MLServer's own."""
    check_kubernetes_name("Server name", name)
    ImageRef.parse(image)
    return {
        "apiVersion": API_VERSION,
        "kind": "Server",
        "metadata": object_metadata(name, namespace),
        "spec": {
            "serverConfig": "mlserver",
            "extraCapabilities": [CAPABILITY],
            "podSpec": {"containers": [{"name": "mlserver", "image": image}]},
        },
    }


def rclone_secret(
    endpoint: str, token: str = "", name: str = DEFAULT_RCLONE_SECRET, namespace: str = ""
) -> dict:
    """The Secret holding the rclone remote ``s3`` for pachd's S3 gateway at ``endpoint``
    (``http://pachd.pachyderm:30600``), in Seldon Core 2's storage-secret format (one key, the
    remote as JSON). pachd takes its token as both keys; without auth any value works as long as
    both keys hold it (pachd checks the signature with the access key id as secret)."""
    check_kubernetes_name("Secret name", name)
    parsed = parse_endpoint(endpoint)
    key = token or NO_TOKEN_CREDENTIAL
    remote = {
        "name": RCLONE_REMOTE,
        "type": "s3",
        "parameters": {
            "provider": "Other",
            "env_auth": "false",
            "access_key_id": key,
            "secret_access_key": key,
            "endpoint": f"{parsed.scheme}://{parsed.netloc}",
        },
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_metadata(name, namespace),
        "type": "Opaque",
        "stringData": {RCLONE_REMOTE: json.dumps(remote)},
    }
