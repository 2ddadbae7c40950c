"""What a step knows about the Kubernetes pod it runs in, and the environment variables the
cluster helpers set on it for the step to read."""

from __future__ import annotations

import os
from collections.abc import Mapping

EXPECTED_GPUS_ENV = "KFP_PACHYDERM_EXPECTED_GPUS"


def in_kubernetes_pod(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a Kubernetes pod: the kubelet sets
    ``KUBERNETES_SERVICE_HOST`` in every container."""
    return bool((os.environ if environ is None else environ).get("KUBERNETES_SERVICE_HOST"))
