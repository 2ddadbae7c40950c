"""The ownerReference that ties a TFJob to the launcher pod that created it, so that Kubernetes
garbage-collects the TFJob with the pod when the launcher dies without deleting it.

What the launcher knows of its own pod comes from its environment (:func:`launcher_pod_from_env`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from kfp_pachyderm.kfp.k8s_client import api_message
from kfp_pachyderm.kfp.pod import in_kubernetes_pod
from kfp_pachyderm.tfjob.k8s_api import TFJobApiError

SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class LauncherPod:
    """The pod this process runs in, as far as its environment tells."""

    name: str
    namespace: str | None
    uid: str | None


def launcher_pod_from_env(
    environ: Mapping[str, str] = os.environ, namespace_file: Path = SA_NAMESPACE_FILE
) -> LauncherPod | None:
    """The launcher's pod, or None outside Kubernetes.

    Relies on: ``KFP_POD_NAME`` and ``KFP_POD_UID``, which the KFP v2 backend sets from the
    downward API (metadata.name, metadata.uid) in every executor pod; else ``HOSTNAME``, which
    Kubernetes sets to the pod name, when ``KUBERNETES_SERVICE_HOST`` says we run in a pod. The
    namespace comes from the service account's namespace file, else ``NAMESPACE`` (set by newer
    KFP backends).
    """
    in_pod = in_kubernetes_pod(environ)
    name = environ.get("KFP_POD_NAME") or (environ.get("HOSTNAME") if in_pod else None)
    if not name:
        return None
    try:
        namespace: str | None = namespace_file.read_text().strip() or None
    except OSError:
        namespace = None
    return LauncherPod(
        name=name,
        namespace=namespace or environ.get("NAMESPACE") or None,
        uid=environ.get("KFP_POD_UID") or None,
    )


def owner_reference_from_pod(core_api: CoreV1Api, namespace: str, pod_name: str) -> dict:
    """An ownerReference to the pod ``namespace/pod_name`` (read to learn its uid), so that a
    TFJob in the same namespace is garbage-collected with the pod. Not a controller reference
    and not blocking the pod's deletion: the TFJob must not hold up a finished step."""
    try:
        pod = core_api.read_namespaced_pod(pod_name, namespace)
    except ApiException as error:
        raise TFJobApiError(
            f"cannot read the launcher pod {namespace}/{pod_name}: HTTP {error.status} "
            f"{error.reason}: {api_message(error)}",
            error.status,
        ) from None
    return _owner_reference(pod.metadata.name, pod.metadata.uid)


def _owner_reference(name: str, uid: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": name,
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": False,
    }


def launcher_owner_reference(
    core_api: CoreV1Api,
    tfjob_namespace: str,
    environ: Mapping[str, str] = os.environ,
    namespace_file: Path = SA_NAMESPACE_FILE,
) -> dict | None:
    """The ownerReference a TFJob in ``tfjob_namespace`` should carry, or None.

    None outside a pod, and when the TFJob lives in another namespace than the launcher pod: the
    garbage collector treats a cross-namespace owner as absent and would delete the TFJob at
    once. With ``KFP_POD_UID`` set no API call is made; otherwise the pod is read for its uid.
    """
    pod = launcher_pod_from_env(environ, namespace_file)
    if pod is None or pod.namespace != tfjob_namespace:
        return None
    if pod.uid:
        return _owner_reference(pod.name, pod.uid)
    return owner_reference_from_pod(core_api, pod.namespace, pod.name)
