"""Run a TFJob on Kubernetes: create or adopt it, watch it to its end, forward its logs, clean up.

The old KFP TFJob launcher exited 0 on a failed job, polled every 30 s and left TFJobs behind on
timeout and cancel. :class:`TFJobLauncher` instead:

- adopts a TFJob that already has the job's name (a restarted launcher pod) instead of creating a
  second one;
- waits by *watching* the TFJob (``watch=true`` with resourceVersion continuity, a re-list on
  410 Gone), so success or failure is seen as soon as the operator writes the condition; every
  condition is read, not only the last, and Restarting is logged;
- follows the logs of the job's pods as they run and forwards them line by line
  (:mod:`kfp_pachyderm.tfjob.logs`);
- on failure or timeout gathers the master replica's logs and the job's events;
- deletes the TFJob when it ends (always on timeout and on SIGTERM, see :meth:`handle_sigterm`);
- retries the API errors worth another try with backoff and turns every other one into a
  :class:`~kfp_pachyderm.tfjob.k8s_api.TFJobApiError` that names the job and quotes the API's
  message (the shared retries of :mod:`kfp_pachyderm.kfp.k8s_client`).

The Kubernetes clients (from :func:`~kfp_pachyderm.kfp.k8s_client.kubernetes_clients`, also
importable from here), the clock and the sleeper are
injected, so tests drive the launcher with the real ``kubernetes`` client against a test API
server and a fake clock.

The launcher's service account needs: ``tfjobs.kubeflow.org``: get, list, watch, create, delete;
``pods``: get, list, watch; ``pods/log``: get; ``events``: list.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

import kubernetes
from kubernetes.client import CoreV1Api, CustomObjectsApi, V1DeleteOptions
from kubernetes.client.exceptions import ApiException

from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.kfp.k8s_client import RETRYABLE_ERRORS, RETRYABLE_STATUS, api_message
from kfp_pachyderm.kfp.k8s_client import kubernetes_clients as kubernetes_clients
from kfp_pachyderm.tfjob.conditions import ConditionObserver
from kfp_pachyderm.tfjob.k8s_api import (
    JOB_NAME_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    TFJOBS,
    TFJobApiError,
    TFJobRetryPolicy,
    hint,
)
from kfp_pachyderm.tfjob.logs import LogFollower
from kfp_pachyderm.tfjob.outcome import CANCELLED, TIMED_OUT, TFJobOutcome
from kfp_pachyderm.tfjob.owner import launcher_owner_reference
from kfp_pachyderm.tfjob.spec import CONTAINER_NAME, GROUP, PLURAL, VERSION, TFJobSpec

logger = logging.getLogger(__name__)


class TFJobCancelled(OperationError):
    """SIGTERM arrived while a TFJob ran; ``outcome`` says whether the TFJob was deleted."""

    def __init__(self, message: str, outcome: TFJobOutcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class TFJobLauncher:
    """Runs TFJobs against a Kubernetes API; see the module docstring for the behaviour.

    Args:
        custom_api, core_api: clients for TFJobs and for pods, logs and events.
        clock: seconds on a monotonic clock; the timeout is measured with it.
        sleeper: waits between retries of a retryable API error.
        log: where progress and the replicas' log lines go (the step's log).
        max_attempts: tries per API call before a retryable error becomes fatal.
        backoff_s, max_backoff_s: the first retry delay, doubled up to the maximum.
        watch_timeout_s: the server-side timeout of one watch request; the launcher reconnects.
        log_grace_s: how long to let log streams drain after the job ends.
        propagation_policy: how deleting the TFJob deletes its pods (Foreground or Background).
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
        watch_timeout_s: int = 60,
        log_grace_s: float = 2.0,
        propagation_policy: str = "Foreground",
    ) -> None:
        if max_attempts < 1:
            raise UsageError(f"invalid max_attempts {max_attempts!r}: must be at least 1")
        if watch_timeout_s < 1:
            raise UsageError(f"invalid watch_timeout_s {watch_timeout_s!r}: must be at least 1")
        if propagation_policy not in ("Foreground", "Background"):
            raise UsageError(
                f"invalid propagation_policy {propagation_policy!r}: Foreground or Background"
            )
        self.custom_api = custom_api
        self.core_api = core_api
        self._clock = clock
        self._sleeper = sleeper
        self._log = log
        self._retry = TFJobRetryPolicy(sleeper, log, max_attempts, backoff_s, max_backoff_s)
        self._watch_timeout_s = watch_timeout_s
        self._log_grace_s = log_grace_s
        self._propagation_policy = propagation_policy
        self._cancelling = False

    # --- one run ---------------------------------------------------------------------------

    def run(
        self,
        spec: TFJobSpec,
        timeout_s: float,
        delete_after: bool = True,
        forward_logs: bool = True,
    ) -> TFJobOutcome:
        """Create (or adopt) the TFJob, wait for it to succeed, fail or time out, and clean up.

        Returns the outcome whatever the job's end (check ``outcome.succeeded``); raises
        TFJobApiError when the API refuses a request and TFJobCancelled on SIGTERM (with
        :meth:`handle_sigterm` active), after deleting the TFJob.

        Args:
            spec: the TFJob; its name should come from the KFP run and task, so that a
                restarted launcher adopts the job it created before.
            timeout_s: how long to wait, from now, before deleting the job as TimedOut.
            delete_after: delete the TFJob once it succeeded or failed.
            forward_logs: follow the replicas' logs and forward them to ``log``.
        """
        if not isinstance(timeout_s, int | float) or not timeout_s > 0:
            raise UsageError(f"invalid timeout_s {timeout_s!r}: must be a number of seconds > 0")
        deadline = self._clock() + timeout_s
        outcome = TFJobOutcome(name=spec.name, state=CANCELLED)
        follower = (
            LogFollower(spec, self.core_api, self._retry, self._log, self._watch_timeout_s)
            if forward_logs
            else None
        )
        exists = False
        try:
            outcome.adopted = self._create_or_adopt(spec)
            exists = True
            if follower:
                follower.start()
            outcome.state = self._wait(spec, deadline, outcome)
            if outcome.state == TIMED_OUT:
                self._log(f"TFJob {spec.namespace}/{spec.name} did not end within {timeout_s}s")
            if follower:
                follower.stop(0 if outcome.state == TIMED_OUT else self._log_grace_s)
            self._collect_logs(spec, outcome, follower)
            if not outcome.succeeded:
                outcome.events = self._events(spec)
            if delete_after or outcome.state == TIMED_OUT:
                self._delete(spec)
                outcome.deleted = True
        except TFJobCancelled as cancelled:
            if follower:
                follower.stop(0)
            self._log(f"SIGTERM: deleting TFJob {spec.namespace}/{spec.name}")
            outcome.state = CANCELLED
            self._delete(spec)
            outcome.deleted = True
            cancelled.outcome = outcome
            raise
        except TFJobApiError as error:
            if exists:  # the step fails: do not leave a job running unwatched
                self._log(f"{error}; deleting TFJob {spec.namespace}/{spec.name}")
                with suppress(TFJobApiError):
                    self._delete(spec)
            raise
        finally:
            if follower:
                follower.stop(0)
        self._log(f"TFJob {spec.namespace}/{spec.name} ended {outcome.state}")
        return outcome

    def _create_or_adopt(self, spec: TFJobSpec) -> bool:
        """Create the TFJob, or adopt the one of the same name; True when adopted."""
        args = (GROUP, VERSION, spec.namespace, PLURAL)
        try:
            existing = self._retry.job_call(
                "get", TFJOBS, spec, self.custom_api.get_namespaced_custom_object, *args,
                spec.name, expected=frozenset({404}),
            )  # fmt: skip
        except ApiException:
            existing = None
        if existing is not None:
            created = existing.get("metadata", {}).get("creationTimestamp", "?")
            self._log(f"adopting TFJob {spec.namespace}/{spec.name} (created {created})")
            return True
        try:
            self._retry.job_call(
                "create", TFJOBS, spec, self.custom_api.create_namespaced_custom_object, *args,
                body=spec.manifest(), expected=frozenset({409}),
            )  # fmt: skip
        except ApiException:
            self._log(f"TFJob {spec.namespace}/{spec.name} already exists; adopting it")
            return True
        self._log(f"created TFJob {spec.namespace}/{spec.name}")
        return False

    def _wait(self, spec: TFJobSpec, deadline: float, outcome: TFJobOutcome) -> str:
        """Watch the TFJob until a terminal condition or the deadline; the final state."""
        observer = ConditionObserver(spec, outcome, self._log)
        resource_version: str | None = None
        failures = 0
        while True:
            if resource_version is None:
                listed = self._retry.job_call(
                    "list", TFJOBS, spec, self.custom_api.list_namespaced_custom_object,
                    GROUP, VERSION, spec.namespace, PLURAL,
                    field_selector=f"metadata.name={spec.name}",
                )  # fmt: skip
                items = listed.get("items") or []
                if not items:
                    return observer.vanished()
                state = observer.observe(items[0])
                if state:
                    return state
                resource_version = listed["metadata"]["resourceVersion"]
            remaining = deadline - self._clock()
            if remaining <= 0:
                return TIMED_OUT
            window = int(max(1, min(self._watch_timeout_s, math.ceil(remaining))))
            watch = kubernetes.watch.Watch()
            try:
                for event in watch.stream(
                    self.custom_api.list_namespaced_custom_object,
                    GROUP, VERSION, spec.namespace, PLURAL,
                    field_selector=f"metadata.name={spec.name}",
                    resource_version=resource_version,
                    timeout_seconds=window,
                    _request_timeout=(10, window + 30),
                ):  # fmt: skip
                    failures = 0
                    job = event["raw_object"]
                    resource_version = job.get("metadata", {}).get(
                        "resourceVersion", resource_version
                    )
                    if event["type"] == "DELETED":
                        return observer.vanished()
                    if event["type"] in ("ADDED", "MODIFIED"):
                        state = observer.observe(job)
                        if state:
                            return state
                    if self._clock() >= deadline:
                        return TIMED_OUT
            except ApiException as error:
                if error.status == 410:
                    self._log(f"watch of TFJob {spec.name}: resourceVersion expired; re-listing")
                    resource_version = None
                    continue
                if error.status not in RETRYABLE_STATUS:
                    raise TFJobApiError(
                        f"cannot watch {TFJOBS} for TFJob {spec.namespace}/{spec.name}: "
                        f"HTTP {error.status} {error.reason}: {api_message(error)}"
                        + hint(error.status, "watch", TFJOBS, spec.namespace),
                        error.status,
                    ) from None
                failures = self._watch_failed(spec, failures, f"HTTP {error.status}")
            except RETRYABLE_ERRORS as error:
                failures = self._watch_failed(spec, failures, type(error).__name__)
            finally:
                watch.stop()

    def _watch_failed(self, spec: TFJobSpec, failures: int, problem: str) -> int:
        failures += 1
        if failures >= self._retry.max_attempts:
            raise TFJobApiError(
                f"cannot watch {TFJOBS} for TFJob {spec.namespace}/{spec.name}: "
                f"{problem}, {failures} times in a row"
            )
        delay = self._retry.delay(failures)
        self._log(f"watch of TFJob {spec.name} broke ({problem}); reconnecting in {delay:.1f}s")
        self._sleeper(delay)
        return failures

    def _collect_logs(
        self, spec: TFJobSpec, outcome: TFJobOutcome, follower: LogFollower | None
    ) -> None:
        outcome.replica_logs = follower.logs() if follower else {}
        outcome.master_logs = outcome.replica_logs.get(f"{spec.master_type.lower()}-0", "")
        if not outcome.master_logs and not outcome.succeeded:
            outcome.master_logs = self._read_master_logs(spec)

    def _read_master_logs(self, spec: TFJobSpec) -> str:
        """The whole log of the master replica's pod, read once; empty if it has no pod, and a
        note saying why when it cannot be read (diagnostics never stop the cleanup)."""
        selector = ",".join(
            (
                f"{JOB_NAME_LABEL}={spec.name}",
                f"{REPLICA_TYPE_LABEL}={spec.master_type.lower()}",
                f"{REPLICA_INDEX_LABEL}=0",
            )
        )
        try:
            pods = self._retry.job_call(
                "list", "pods", spec, self.core_api.list_namespaced_pod, spec.namespace,
                label_selector=selector,
            ).items  # fmt: skip
            if not pods:
                return ""
            return self._retry.job_call(
                "get", "pods/log", spec, self.core_api.read_namespaced_pod_log,
                pods[0].metadata.name, spec.namespace, container=CONTAINER_NAME,
                expected=frozenset({400}),
            )  # fmt: skip
        except ApiException as error:
            return f"(no logs: {api_message(error)})"
        except TFJobApiError as error:
            return f"(no logs: {error})"

    def _events(self, spec: TFJobSpec) -> list[str]:
        """The events of the TFJob and of its pods, oldest first, one line each (or one line
        saying why they cannot be listed: diagnostics never stop the cleanup)."""
        events = []
        try:
            pods = self._retry.job_call(
                "list", "pods", spec, self.core_api.list_namespaced_pod, spec.namespace,
                label_selector=f"{JOB_NAME_LABEL}={spec.name}",
            ).items  # fmt: skip
            for name in [spec.name, *sorted(p.metadata.name for p in pods)]:
                events += self._retry.job_call(
                    "list", "events", spec, self.core_api.list_namespaced_event, spec.namespace,
                    field_selector=f"involvedObject.name={name}",
                ).items  # fmt: skip
        except TFJobApiError as error:
            return [f"(no events: {error})"]

        def when(event) -> str:
            stamp = event.last_timestamp or event.event_time or event.first_timestamp
            return stamp.isoformat() if stamp else ""

        return [
            f"{when(e)} {e.type} {e.reason} {e.involved_object.kind}/{e.involved_object.name}: "
            f"{e.message}"
            for e in sorted(events, key=when)
        ]

    def _delete(self, spec: TFJobSpec) -> None:
        """Delete the TFJob (gone already is fine); a failure raises :class:`TFJobApiError`."""
        try:
            self._retry.job_call(
                "delete", TFJOBS, spec, self.custom_api.delete_namespaced_custom_object,
                GROUP, VERSION, spec.namespace, PLURAL, spec.name,
                body=V1DeleteOptions(propagation_policy=self._propagation_policy),
                expected=frozenset({404}),
            )  # fmt: skip
        except ApiException:
            self._log(f"TFJob {spec.namespace}/{spec.name} was already deleted")
            return
        self._log(f"deleted TFJob {spec.namespace}/{spec.name}")

    def prepare(self, spec: TFJobSpec) -> TFJobSpec:
        """``spec`` owned by the pod this launcher runs in (when it runs in one), so that
        Kubernetes deletes the TFJob with the pipeline's pod."""
        return replace(spec, owner=launcher_owner_reference(self.core_api, spec.namespace))

    # --- cancellation ----------------------------------------------------------------------

    @contextmanager
    def handle_sigterm(self) -> Iterator[None]:
        """While active, SIGTERM (a cancelled KFP run, an evicted pod) raises TFJobCancelled in
        the main thread: a ``run`` in progress deletes its TFJob and re-raises it, so the step
        exits non-zero and leaves no TFJob behind. Later SIGTERMs are ignored while the first
        is handled. Enter it from the main thread; the previous handler comes back on exit."""

        def on_sigterm(signum: int, frame: object) -> None:
            if self._cancelling:
                return
            self._cancelling = True
            raise TFJobCancelled("SIGTERM received: the step was cancelled")

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
            self._cancelling = False
