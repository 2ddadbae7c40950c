"""How the TFJob launcher talks to the Kubernetes API: what it asks for, what it retries, and
the error a refused call becomes.

A busy or restarting API server is normal in a cluster, so the launcher retries the errors in
:data:`RETRYABLE_STATUS` and :data:`RETRYABLE_ERRORS` with doubling backoff
(:class:`RetryPolicy`); every other error will not change on a retry and becomes a
:class:`TFJobApiError` at once, naming the job and quoting the API's message with a hint at the
usual cause.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass

import urllib3
from kubernetes.client.exceptions import ApiException

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.tfjob.spec import GROUP, PLURAL, TFJobSpec

TFJOBS = f"{PLURAL}.{GROUP}"

# The labels the Training Operator puts on the pods of a TFJob.
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"

# HTTP statuses worth another try: throttling and a busy or restarting API server. Every other
# status is fatal, as it will not change on a retry: 400 bad request, 401 no credentials, 403 no
# RBAC permission, 404 no such resource (on create: no TFJob CRD or namespace), 422 invalid
# object, and any other.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Transport failures (connection refused or reset, read timeout) are retried like 503. Under
# these retries, urllib3 itself retries a 429 or 503 that carries Retry-After, waiting as told.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, OSError)


class TFJobApiError(KfpPachydermError):
    """The Kubernetes API refused a request about a TFJob, or stayed unreachable after retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api_message(error: ApiException) -> str:
    """The ``message`` of the Status object the API answered with, else the HTTP reason."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(error.reason or body or "no message")


def hint(status: int, verb: str, resource: str, namespace: str) -> str:
    """The usual cause of a fatal ``status`` on ``verb resource``, for the error message."""
    if status == 401:
        return " (the launcher's credentials were rejected)"
    if status == 403:
        return (
            f" (the launcher's service account needs RBAC permission to {verb} {resource} "
            f"in namespace {namespace})"
        )
    if status == 404 and verb == "create":
        return (
            f" (is the Kubeflow Training Operator installed, with its {TFJOBS} CRD, "
            f"and does namespace {namespace} exist?)"
        )
    return ""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of API calls: up to ``max_attempts`` tries, ``backoff_s`` before the first retry,
    doubled up to ``max_backoff_s``, waited with ``sleeper`` and announced on ``log``."""

    sleeper: Callable[[float], None]
    log: Callable[[str], None]
    max_attempts: int = 6
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0

    def call(
        self,
        verb: str,
        resource: str,
        spec: TFJobSpec,
        fn: Callable,
        *args: object,
        expected: frozenset[int] = frozenset(),
        **kwargs: object,
    ):
        """``fn(*args, **kwargs)``, retrying retryable errors; an ApiException whose status is in
        ``expected`` goes back to the caller as is; any other error becomes a TFJobApiError."""
        what = f"{verb} {resource} for TFJob {spec.namespace}/{spec.name}"
        for attempt in itertools.count(1):
            try:
                return fn(*args, **kwargs)
            except ApiException as error:
                if error.status in expected:
                    raise
                message = api_message(error)
                if error.status not in RETRYABLE_STATUS or attempt == self.max_attempts:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise TFJobApiError(
                        f"cannot {what}{tries}: HTTP {error.status} {error.reason}: {message}"
                        + hint(error.status, verb, resource, spec.namespace),
                        error.status,
                    ) from None
                problem = f"HTTP {error.status} {message}"
                delay = self.delay(attempt)
            except RETRYABLE_ERRORS as error:
                if attempt == self.max_attempts:
                    raise TFJobApiError(
                        f"cannot {what} after {attempt} attempts: the API server is unreachable "
                        f"({type(error).__name__}: {error})"
                    ) from None
                problem = type(error).__name__
                delay = self.delay(attempt)
            self.log(
                f"{what}: {problem}; retrying in {delay:.1f}s "
                f"(attempt {attempt} of {self.max_attempts})"
            )
            self.sleeper(delay)

    def delay(self, attempt: int) -> float:
        """The wait before retrying after failed attempt number ``attempt``."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
