"""How the TFJob launcher talks to the Kubernetes API: what it asks for, and the error a refused
call becomes.

The retries are the shared ones of :mod:`kfp_pachyderm.kfp.k8s_client`; this module adds what is
TFJob-specific: :class:`TFJobApiError`, messages that name the job, and hints at the usual cause
of a fatal status (:func:`hint`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kfp_pachyderm.kfp.k8s_client import KubernetesApiError, RetryPolicy, access_hint
from kfp_pachyderm.tfjob.spec import GROUP, PLURAL, TFJobSpec

TFJOBS = f"{PLURAL}.{GROUP}"

# The labels the Training Operator puts on the pods of a TFJob.
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"


class TFJobApiError(KubernetesApiError):
    """The Kubernetes API refused a request about a TFJob, or stayed unreachable after retries."""


def hint(status: int, verb: str, resource: str, namespace: str) -> str:
    """The usual cause of a fatal ``status`` on ``verb resource``, for the error message."""
    if status == 404 and verb == "create":
        return (
            f" (is the Kubeflow Training Operator installed, with its {TFJOBS} CRD, "
            f"and does namespace {namespace} exist?)"
        )
    return access_hint(status, verb, resource, namespace, "the launcher's")


@dataclass(frozen=True)
class TFJobRetryPolicy(RetryPolicy):
    """The shared retries, failing with TFJobApiError and messages that name the job."""

    error: type[KubernetesApiError] = TFJobApiError

    def job_call(
        self,
        verb: str,
        resource: str,
        spec: TFJobSpec,
        fn: Callable,
        *args: object,
        expected: frozenset[int] = frozenset(),
        **kwargs: object,
    ):
        """``fn(*args, **kwargs)`` as :meth:`RetryPolicy.call`, for ``verb resource`` on behalf
        of the TFJob ``spec``: a failure reads "cannot <verb> <resource> for TFJob <ns>/<name>"."""
        return self.call(
            f"{verb} {resource} for TFJob {spec.namespace}/{spec.name}",
            fn,
            *args,
            expected=expected,
            hint=lambda status: hint(status, verb, resource, spec.namespace),
            **kwargs,
        )
