"""The ``deploy_model`` component's body: apply the serving manifests, with the storage Secret
made from the pachd token, and wait until the service is ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from kfp import dsl

from kfp_pachyderm.bodies.common import ComponentInputs, write_manifests
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.k8s_client import kubernetes_clients
from kfp_pachyderm.kserve.credentials import storage_secret_for
from kfp_pachyderm.kserve.deploy import ModelDeployer
from kfp_pachyderm.modelimage.metadata import LABEL_COMMIT
from kfp_pachyderm.pfs.connection import resolve_token

# Where Kubernetes mounts the pod's own namespace.
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class DeployModelInputs(ComponentInputs):
    """The parameters of the ``deploy_model`` component."""

    manifests: dsl.Artifact
    deployment: dsl.Artifact
    namespace: str
    s3_endpoint: str
    timeout_seconds: int


def _namespace(requested: str, documents: list[dict]) -> str:
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
    if inputs.timeout_seconds < 1:
        raise UsageError(f"timeout_seconds {inputs.timeout_seconds} must be positive")
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
