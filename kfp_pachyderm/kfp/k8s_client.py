"""Kubernetes API access shared by the steps that drive Kubernetes objects (a TFJob launcher, a
model deployer): the clients, which errors are worth another try, and the error a refused call
becomes.

A busy or restarting API server is normal in a cluster, so :class:`RetryPolicy` retries the
errors in :data:`RETRYABLE_STATUS` and :data:`RETRYABLE_ERRORS` with doubling backoff; every
other error will not change on a retry and becomes a :class:`KubernetesApiError` at once, saying
what was asked and quoting the API's message, with a hint at the usual cause from the caller.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import kubernetes
import urllib3
from kubernetes.client import ApiClient, Configuration, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from kfp_pachyderm.errors import OperationError, UsageError

# HTTP statuses worth another try: throttling and a busy or restarting API server. Every other
# status is fatal, as it will not change on a retry: 400 bad request, 401 no credentials, 403 no
# RBAC permission, 404 no such resource (on create: no CRD or namespace), 409 conflict, 422
# invalid object, and any other.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Transport failures (connection refused or reset, read timeout) are retried like 503. Under
# these retries, urllib3 itself retries a 429 or 503 that carries Retry-After, waiting as told.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, OSError)


class KubernetesApiError(OperationError):
    """The Kubernetes API refused a request (``status`` is its HTTP status), or stayed
    unreachable after retries (``status`` is None)."""

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


def access_hint(status: int, verb: str, resource: str, namespace: str, who: str) -> str:
    """The usual cause of a 401 or 403 on ``verb resource`` by ``who`` (as in "the launcher's"),
    for the error message; empty for other statuses."""
    if status == 401:
        return f" ({who} credentials were rejected)"
    if status == 403:
        return (
            f" ({who} service account needs RBAC permission to {verb} {resource} "
            f"in namespace {namespace})"
        )
    return ""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of API calls: up to ``max_attempts`` tries, ``backoff_s`` before the first retry,
    doubled up to ``max_backoff_s``, waited with ``sleeper`` and announced on ``log``. A call
    that fails for good raises ``error`` (KubernetesApiError or a subclass)."""

    sleeper: Callable[[float], None]
    log: Callable[[str], None]
    max_attempts: int = 6
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    error: type[KubernetesApiError] = KubernetesApiError

    def call(
        self,
        what: str,
        fn: Callable,
        *args: object,
        expected: frozenset[int] = frozenset(),
        hint: Callable[[int], str] | None = None,
        **kwargs: object,
    ):
        """``fn(*args, **kwargs)``, retrying retryable errors.

        An ApiException whose status is in ``expected`` goes back to the caller as is; any other
        error becomes ``self.error`` reading "cannot <what>: HTTP <status> ...", followed by
        ``hint(status)`` (the usual cause, with a leading space) for a fatal status.
        """
        for attempt in itertools.count(1):
            try:
                return fn(*args, **kwargs)
            except ApiException as error:
                if error.status in expected:
                    raise
                message = api_message(error)
                if error.status not in RETRYABLE_STATUS or attempt == self.max_attempts:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise self.error(
                        f"cannot {what}{tries}: HTTP {error.status} {error.reason}: {message}"
                        + (hint(error.status) if hint else ""),
                        error.status,
                    ) from None
                problem = f"HTTP {error.status} {message}"
                delay = self.delay(attempt)
            except RETRYABLE_ERRORS as error:
                if attempt == self.max_attempts:
                    raise self.error(
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


def kubernetes_clients(
    config: Configuration | None = None,
) -> tuple[CustomObjectsApi, CoreV1Api]:
    """Clients for custom objects and for the core API: from ``config`` if given, else the
    in-cluster service account (inside a pod), else the kubeconfig (``KUBECONFIG``, read now
    rather than when the kubernetes package was imported, or ``~/.kube/config``)."""
    if config is None:
        config = Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except ConfigException:
            try:
                kubernetes.config.load_kube_config(
                    config_file=os.environ.get("KUBECONFIG") or None, client_configuration=config
                )
            except (ConfigException, OSError) as error:
                raise UsageError(
                    "no Kubernetes configuration: not inside a pod (no KUBERNETES_SERVICE_HOST) "
                    f"and no usable kubeconfig (set KUBECONFIG): {error}"
                ) from None
    api_client = ApiClient(config)
    return CustomObjectsApi(api_client), CoreV1Api(api_client)
