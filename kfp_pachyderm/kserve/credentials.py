"""The storage Secret a set of serving manifests needs, made at deploy time from the pachd
token, so credentials never sit in a manifest, an artifact or a log.

An InferenceService reading ``s3://`` through the S3 gateway needs the KServe S3 Secret its
ServiceAccount names (:func:`kfp_pachyderm.kserve.manifests.storage_secret`); a Seldon Core 2
Model needs the rclone Secret it names (:func:`kfp_pachyderm.seldon.core2.rclone_secret`).
An InferenceService running an image needs none.
"""

from __future__ import annotations

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kserve.manifests import storage_secret
from kfp_pachyderm.seldon.core2 import rclone_secret


def _service_account_secret(documents: list[dict], account: str) -> str:
    for document in documents:
        if document.get("kind") == "ServiceAccount" and document["metadata"]["name"] == account:
            secrets = document.get("secrets") or []
            if secrets:
                return secrets[0]["name"]
    raise UsageError(
        f"the InferenceService reads s3:// through ServiceAccount {account!r}, but the "
        "manifests hold no ServiceAccount of that name naming a Secret"
    )


def storage_secret_for(
    documents: list[dict], s3_endpoint: str | None, token: str | None
) -> dict | None:
    """The Secret the serving resource (the last of ``documents``) reads the model with, for
    pachd's S3 gateway at ``s3_endpoint`` and the pachd ``token``; None when it needs none."""
    serving = documents[-1] if documents else {}
    namespace = serving.get("metadata", {}).get("namespace", "")
    if serving.get("kind") == "InferenceService":
        predictor = serving.get("spec", {}).get("predictor", {})
        uri = predictor.get("model", {}).get("storageUri", "")
        if not uri.startswith("s3://"):
            return None
        secret = _service_account_secret(documents, predictor.get("serviceAccountName", ""))
        make = storage_secret
    elif serving.get("kind") == "Model" and serving.get("spec", {}).get("secretName"):
        secret = serving["spec"]["secretName"]
        make = rclone_secret
    else:
        return None
    if not s3_endpoint:
        raise UsageError(
            f"{serving['kind']} {serving['metadata']['name']} reads the model through the S3 "
            "gateway: set s3_endpoint (e.g. http://pachd.pachyderm:30600)"
        )
    return make(s3_endpoint, token or "", name=secret, namespace=namespace)
