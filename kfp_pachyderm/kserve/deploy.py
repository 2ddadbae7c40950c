"""Deploy a model server on Kubernetes: apply its manifests with the ``kubernetes`` client and
wait until the model serves.

:class:`ModelDeployer` takes the manifests the serving modules build (a ServiceAccount, a KServe
ServingRuntime or a Seldon Core 2 Server, and last the serving resource: a KServe
InferenceService or a Seldon Core 2 Model) and, apart, the Secret with the storage credentials,
built in process. It:

- validates everything before its first request (:func:`~kfp_pachyderm.kserve.plan.plan_deploy`);
- creates the Secret and each supporting object, or replaces the one of the same name (the
  manifests are the desired state);
- creates the serving resource. When one of that name exists, serving the same model commit
  (label ``kfp-pachyderm/model-commit``) with the same spec, it adopts it without a write, so a
  restarted step finds its service instead of making a second; otherwise it replaces it, so a
  new model commit rolls out under the same name;
- polls the serving resource until it is Ready for the generation it wrote, and fails at once
  on the failures KServe and Seldon Core 2 report as final
  (:func:`~kfp_pachyderm.kserve.readiness.serving_state`);
- never writes the Secret's values to its log or into an error message.

API errors worth another try are retried (:class:`~kfp_pachyderm.kfp.k8s_client.RetryPolicy`);
the others raise :class:`~kfp_pachyderm.kfp.k8s_client.KubernetesApiError` with a hint at the
usual cause (RBAC, a missing CRD). The step's service account needs get, create and update on
serviceaccounts, secrets, and the kinds it applies (servingruntimes.serving.kserve.io and
inferenceservices.serving.kserve.io, or servers.mlops.seldon.io and models.mlops.seldon.io) in
the namespace.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from kubernetes.client import CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from kfp_pachyderm.errors import KfpPachydermError, OperationError, UsageError
from kfp_pachyderm.kfp.k8s_client import KubernetesApiError, RetryPolicy, access_hint
from kfp_pachyderm.kserve.plan import DeployPlan, Kind, plan_deploy, secret_values
from kfp_pachyderm.kserve.plan import ManifestError as ManifestError
from kfp_pachyderm.kserve.readiness import ServingState, serving_state
from kfp_pachyderm.modelimage.metadata import LABEL_COMMIT

logger = logging.getLogger(__name__)

REDACTED = "<redacted>"
_CORE_METHODS = {"serviceaccounts": "service_account", "secrets": "secret"}


class ModelServingError(OperationError):
    """The serving resource reports a failure it will not recover from by waiting."""


class ModelServingTimeout(ModelServingError):
    """The serving resource was not Ready within the timeout."""


@dataclass(frozen=True)
class DeployResult:
    """What :meth:`ModelDeployer.deploy` did: the serving resource, its URL (``status.url`` of
    an InferenceService, empty for a Model), whether it was created, replaced or adopted, and
    how many seconds the deploy took."""

    name: str
    namespace: str
    kind: str
    url: str
    created: bool
    replaced: bool
    adopted: bool
    seconds: float


class _Ops(NamedTuple):
    create: Callable[[dict], dict]
    read: Callable[[str], dict]
    replace: Callable[[str, dict], dict]


def _contains(theirs: Any, ours: Any) -> bool:
    """Whether ``theirs`` has every field of ``ours`` with our value; fields only in
    ``theirs`` are the defaults an API server or webhook filled in."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(
            key in theirs and _contains(theirs[key], value) for key, value in ours.items()
        )
    if isinstance(ours, list):
        return (
            isinstance(theirs, list)
            and len(theirs) == len(ours)
            and all(_contains(t, o) for t, o in zip(theirs, ours, strict=True))
        )
    return theirs == ours


class ModelDeployer:
    """Applies serving manifests and waits until the model serves; see the module docstring.

    Args:
        custom_api, core_api: clients for custom objects and for secrets and service accounts
            (:func:`~kfp_pachyderm.kfp.k8s_client.kubernetes_clients`).
        clock: seconds on a monotonic clock; the timeout is measured with it.
        sleeper: waits between retries and between polls of the serving resource.
        log: where progress goes (the step's log); never given a secret value.
        max_attempts, backoff_s, max_backoff_s: retries of each API call.
        poll_s: the wait between two reads of the serving resource's status.
    """

    def __init__(
        self,
        custom_api: CustomObjectsApi,
        core_api: CoreV1Api,
        clock: Callable[[], float] = time.monotonic,
        sleeper: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = logger.info,
        *,
        max_attempts: int = 6,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        poll_s: float = 5.0,
    ) -> None:
        if max_attempts < 1:
            raise UsageError(f"invalid max_attempts {max_attempts!r}: must be at least 1")
        if not poll_s > 0:
            raise UsageError(f"invalid poll_s {poll_s!r}: must be > 0")
        self.custom_api = custom_api
        self.core_api = core_api
        self._clock = clock
        self._sleeper = sleeper
        self._log = log
        self._poll_s = poll_s
        self._retry = RetryPolicy(sleeper, self._say, max_attempts, backoff_s, max_backoff_s)
        self._hidden: tuple[str, ...] = ()

    def deploy(
        self,
        documents: list[dict],
        secret: dict | None = None,
        timeout_s: float = 600,
        namespace: str = "",
    ) -> DeployResult:
        """Apply ``documents`` (and ``secret``) and wait until the serving resource is Ready.

        Args:
            documents: manifests in the order to apply them: a ``v1`` ServiceAccount and a
                ``serving.kserve.io/v1alpha1`` ServingRuntime where needed, then exactly one
                serving resource, last: a ``serving.kserve.io/v1beta1`` InferenceService or a
                ``mlops.seldon.io/v1alpha1`` Model, labelled ``kfp-pachyderm/model-commit``.
            secret: a ``v1`` Secret with credentials, applied first (the ServiceAccount may
                name it); its values are never logged nor put in an error message.
            timeout_s: how long, from now, the serving resource has to become Ready.
            namespace: for manifests that name none; those that do must agree with it.

        Raises:
            ManifestError: the documents are invalid (before any request).
            KubernetesApiError: the API refused a request, or stayed unreachable.
            ModelServingError: the serving resource reported a final failure;
                ModelServingTimeout when it was not Ready in time.
        """
        if not isinstance(timeout_s, int | float) or not timeout_s > 0:
            raise UsageError(f"invalid timeout_s {timeout_s!r}: must be a number of seconds > 0")
        plan = plan_deploy(documents, secret, namespace)
        self._hidden = secret_values(secret)
        try:
            return self._deploy(plan, timeout_s)
        except KfpPachydermError as error:
            error.args = tuple(self._scrub(a) if isinstance(a, str) else a for a in error.args)
            raise
        finally:
            self._hidden = ()

    def _deploy(self, plan: DeployPlan, timeout_s: float) -> DeployResult:
        start = self._clock()
        ns = plan.namespace
        for kind, body in plan.supporting:
            self._apply(kind, ns, body)
        kind, name = plan.kind, plan.serving["metadata"]["name"]
        what = f"{kind.kind} {ns}/{name}"
        action, written = self._apply_serving(plan)
        generation = int(written.get("metadata", {}).get("generation") or 0)
        self._say(f"{action} {what} (model commit {plan.commit}, generation {generation})")
        state = self._wait(kind, ns, name, generation, start + timeout_s, timeout_s)
        seconds = self._clock() - start
        at = f" at {state.url}" if state.url else ""
        self._say(f"{what} is Ready{at} after {seconds:.1f}s")
        return DeployResult(
            name=name,
            namespace=ns,
            kind=kind.kind,
            url=state.url,
            created=action == "created",
            replaced=action == "replaced",
            adopted=action == "adopted",
            seconds=seconds,
        )

    # --- writes ------------------------------------------------------------------------------

    def _apply(self, kind: Kind, ns: str, body: dict) -> None:
        """Create the object, or replace the one of the same name."""
        name = body["metadata"]["name"]
        ops = self._ops(kind, ns)
        try:
            self._call("create", kind, ns, name, ops.create, body, expected=frozenset({409}))
            self._say(f"created {kind.kind} {ns}/{name}")
        except ApiException:
            self._replace(kind, ns, body, None)
            self._say(f"replaced {kind.kind} {ns}/{name}")

    def _apply_serving(self, plan: DeployPlan) -> tuple[str, dict]:
        """Create, adopt or replace the serving resource: what was done and the object then."""
        kind, ns, body = plan.kind, plan.namespace, plan.serving
        name = body["metadata"]["name"]
        ops = self._ops(kind, ns)
        existing = self._read(kind, ns, name, missing_ok=True)
        if existing is None:
            try:
                created = self._call(
                    "create", kind, ns, name, ops.create, body, expected=frozenset({409})
                )
                return "created", created
            except ApiException:  # created by someone else since the read
                existing = self._read(kind, ns, name)
        labels = existing.get("metadata", {}).get("labels") or {}
        if labels.get(LABEL_COMMIT) == plan.commit and _contains(
            existing.get("spec"), body.get("spec")
        ):
            return "adopted", existing
        return "replaced", self._replace(kind, ns, body, existing)

    def _replace(self, kind: Kind, ns: str, body: dict, current: dict | None) -> dict:
        """PUT ``body`` over the object at its current resourceVersion; on a conflict (someone
        wrote it in between) read it again and retry."""
        name = body["metadata"]["name"]
        ops = self._ops(kind, ns)
        for _ in range(self._retry.max_attempts):
            if current is None:
                current = self._read(kind, ns, name)
            update = copy.deepcopy(body)
            update["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                return self._call(
                    "update", kind, ns, name, ops.replace, name, update, expected=frozenset({409})
                )
            except ApiException:
                self._say(f"{kind.kind} {ns}/{name} changed while being replaced; reading it again")
                current = None
        raise KubernetesApiError(
            f"cannot update {kind.resource} {ns}/{name}: it changed under every one of "
            f"{self._retry.max_attempts} attempts (HTTP 409 Conflict)",
            409,
        )

    # --- reads -------------------------------------------------------------------------------

    def _read(self, kind: Kind, ns: str, name: str, missing_ok: bool = False) -> dict | None:
        try:
            return self._call(
                "get", kind, ns, name, self._ops(kind, ns).read, name,
                expected=frozenset({404}) if missing_ok else frozenset(),
            )  # fmt: skip
        except ApiException:
            return None

    def _wait(
        self, kind: Kind, ns: str, name: str, generation: int, deadline: float, timeout_s: float
    ) -> ServingState:
        """Poll the serving resource until it is Ready for ``generation``, failed, or late."""
        what = f"{kind.kind} {ns}/{name}"
        said = ""
        while True:
            state = serving_state(kind.kind, self._read(kind, ns, name) or {}, generation)
            if state.failure:
                raise ModelServingError(f"{what} cannot serve the model: {state.failure}")
            if state.ready:
                return state
            if state.detail != said:
                self._say(f"waiting for {what}: {state.detail}")
                said = state.detail
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ModelServingTimeout(
                    f"{what} was not Ready within {timeout_s:g}s; last: {state.detail}"
                )
            self._sleeper(min(self._poll_s, remaining))

    # --- plumbing ----------------------------------------------------------------------------

    def _ops(self, kind: Kind, ns: str) -> _Ops:
        """Create, read and replace of ``kind`` in ``ns``, each answering a plain dict."""
        if not kind.group:
            suffix = _CORE_METHODS[kind.plural]
            api = self.core_api
            plain = api.api_client.sanitize_for_serialization
            create = getattr(api, f"create_namespaced_{suffix}")
            read = getattr(api, f"read_namespaced_{suffix}")
            replace = getattr(api, f"replace_namespaced_{suffix}")
            return _Ops(
                lambda body: plain(create(ns, body)),
                lambda name: plain(read(name, ns)),
                lambda name, body: plain(replace(name, ns, body)),
            )
        args = (kind.group, kind.version, ns, kind.plural)
        custom = self.custom_api
        return _Ops(
            lambda body: custom.create_namespaced_custom_object(*args, body),
            lambda name: custom.get_namespaced_custom_object(*args, name),
            lambda name, body: custom.replace_namespaced_custom_object(*args, name, body),
        )

    def _call(
        self,
        verb: str,
        kind: Kind,
        ns: str,
        name: str,
        fn: Callable,
        *args: object,
        expected: frozenset[int] = frozenset(),
    ):
        def hint(status: int) -> str:
            if status == 404 and verb == "create" and kind.installed_by:
                return (
                    f" (is {kind.installed_by} installed (CRD {kind.resource})? "
                    f"does namespace {ns} exist?)"
                )
            if status == 404 and verb == "create":
                return f" (does namespace {ns} exist?)"
            return access_hint(status, verb, kind.resource, ns, "the deploy step's")

        what = f"{verb} {kind.resource} {ns}/{name}"
        return self._retry.call(what, fn, *args, expected=expected, hint=hint)

    def _scrub(self, text: str) -> str:
        for value in self._hidden:
            text = text.replace(value, REDACTED)
        return text

    def _say(self, line: str) -> None:
        self._log(self._scrub(line))
