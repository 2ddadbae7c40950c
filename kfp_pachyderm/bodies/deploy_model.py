"""The ``deploy_model`` component's body: apply the serving manifests, with the storage Secret
made from the pachd token, and wait until the service is ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from kfp import dsl

from kfp_pachyderm.bodies.common import write_manifests
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.checks import at_least, check_endpoint_url, check_kubernetes_object_name
from kfp_pachyderm.kfp.contract import (
    ComponentInputs,
    Contract,
    artifact_input,
    optional,
    output,
    parameter,
)
from kfp_pachyderm.kfp.k8s_client import kubernetes_clients
from kfp_pachyderm.kserve.credentials import storage_secret_for
from kfp_pachyderm.kserve.deploy import ModelDeployer
from kfp_pachyderm.modelimage.metadata import LABEL_COMMIT
from kfp_pachyderm.pfs.connection import resolve_token

# Where Kubernetes mounts the pod's own namespace.
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True, kw_only=True)
class DeployModelInputs(ComponentInputs):
    """The parameters of the ``deploy_model`` component."""

    manifests: dsl.Artifact = artifact_input(
        "a multi-document YAML artifact, e.g. `build_mlserver_image`'s "
        "`storage_inference_service`, `image_inference_service` or `seldon_core2_model`"
    )
    deployment: dsl.Artifact = output("the applied manifests, with the service's URL")
    namespace: str | None = optional(
        "where to deploy; not set: the manifests' own, else the step pod's namespace",
        check=check_kubernetes_object_name,
    )
    s3_endpoint: str | None = optional(
        "pachd's S3 gateway as the serving pods reach it, e.g. "
        "`http://pachd.pachyderm.svc.cluster.local:30600` (needed by the `storageUri` forms)",
        check=check_endpoint_url,
    )
    timeout_seconds: int = parameter(
        "how long the service has to become ready", 900, check=at_least(1)
    )


def _namespace(requested: str | None, documents: list[dict]) -> str:
    """The namespace to deploy into: ``requested``, else the manifests' own, else this pod's,
    else ``default``."""
    if requested:
        return requested
    found = {d["metadata"].get("namespace") for d in documents} - {None, ""}
    if len(found) > 1:
        raise UsageError(f"the manifests name several namespaces: {sorted(found)}")
    if found:
        return found.pop()
    if POD_NAMESPACE_FILE.is_file():
        return POD_NAMESPACE_FILE.read_text().strip()
    return "default"


def run(inputs: DeployModelInputs) -> str:
    """The component: read the manifests, make the storage Secret, deploy and wait; return
    the service's URL."""
    text = Path(inputs.manifests.path).read_text()
    documents = [d for d in yaml.safe_load_all(text) if d]
    if not documents:
        raise UsageError(
            f"{inputs.manifests.uri or inputs.manifests.path} holds no manifests "
            f"({text.strip()[:120]!r})"
        )
    namespace = _namespace(inputs.namespace, documents)
    for document in documents:
        document["metadata"]["namespace"] = namespace
    secret = storage_secret_for(documents, inputs.s3_endpoint, resolve_token()[0])
    deployer = ModelDeployer(*kubernetes_clients(), log=print)
    result = deployer.deploy(documents, secret, timeout_s=inputs.timeout_seconds)
    write_manifests(inputs.deployment, documents)
    inputs.deployment.metadata.update(
        {
            "kind": result.kind,
            "name": result.name,
            "namespace": result.namespace,
            "url": result.url,
            "model_commit": documents[-1]["metadata"]["labels"].get(LABEL_COMMIT),
        }
    )
    print(f"{result.kind} {result.namespace}/{result.name} is ready at {result.url or '(no URL)'}")
    return result.url


CONTRACT = Contract(
    "deploy_model",
    DeployModelInputs,
    run,
    """Apply ``manifests`` (an output of build_mlserver_image: a KServe InferenceService with
    what it needs, or a Seldon Core 2 Model) with the Kubernetes API, and wait until the
    service is ready; return its URL ("" for a Seldon Core 2 Model). A rerun adopts the
    service it already made; a new model commit replaces the old one under the same name; a
    failure quotes the service's own condition. A model read through the S3 gateway gets its
    storage Secret made here from the pachd token, at ``s3_endpoint``; the token is never
    written to an artifact or a log. ``namespace`` empty: the manifests' own, else this
    pod's.
    """,
)
