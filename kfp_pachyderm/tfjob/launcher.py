"""Run a TFJob on Kubernetes: create or adopt it, watch it to its end, forward its logs, clean up.

The old KFP TFJob launcher exited 0 on a failed job, polled every 30 s and left TFJobs behind on
timeout and cancel. :class:`TFJobLauncher` instead:

- adopts a TFJob that already has the job's name (a restarted launcher pod) instead of creating a
  second one;
- waits by *watching* the TFJob (``watch=true`` with resourceVersion continuity, a re-list on
  410 Gone), so success or failure is seen as soon as the operator writes the condition; every
  condition is read, not only the last, and Restarting is logged;
- follows the logs of the job's pods as they run and forwards them line by line;
- on failure or timeout gathers the master replica's logs and the job's events;
- deletes the TFJob when it ends (always on timeout and on SIGTERM, see :meth:`handle_sigterm`);
- retries the API errors listed in :data:`RETRYABLE_STATUS` with backoff and turns every other
  one into a :class:`TFJobApiError` that names the job and quotes the API's message.

The Kubernetes clients, the clock and the sleeper are injected, so tests drive the launcher with
the real ``kubernetes`` client against a test API server and a fake clock.

The launcher's service account needs: ``tfjobs.kubeflow.org``: get, list, watch, create, delete;
``pods``: get, list, watch; ``pods/log``: get; ``events``: list.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import kubernetes
import urllib3
from kubernetes.client import ApiClient, Configuration, CoreV1Api, CustomObjectsApi, V1DeleteOptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.tfjob.outcome import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    TIMED_OUT,
    Condition,
    TFJobOutcome,
)
from kfp_pachyderm.tfjob.spec import CONTAINER_NAME, GROUP, PLURAL, VERSION, TFJobSpec

logger = logging.getLogger(__name__)

# HTTP statuses worth another try: throttling and a busy or restarting API server.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# HTTP statuses that will not change on a retry: bad request, no credentials, no RBAC permission,
# no such resource (on create: no TFJob CRD or namespace), invalid object. Any status in neither
# set is treated as fatal too.
FATAL_STATUS = frozenset({400, 401, 403, 404, 422})
# Transport failures (connection refused or reset, read timeout) are retried like 503. Under
# these retries, urllib3 itself retries a 429 or 503 that carries Retry-After, waiting as told.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, OSError)

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"

TFJOBS = f"{PLURAL}.{GROUP}"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
RUNNING_PHASES = ("Running", "Succeeded", "Failed")


class TFJobApiError(KfpPachydermError):
    """The Kubernetes API refused a request about a TFJob, or stayed unreachable after retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TFJobCancelled(KfpPachydermError):
    """SIGTERM arrived while a TFJob ran; ``outcome`` says whether the TFJob was deleted."""

    def __init__(self, message: str, outcome: TFJobOutcome | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


def _api_message(error: ApiException) -> str:
    """The ``message`` of the Status object the API answered with, else the HTTP reason."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(error.reason or body or "no message")


def _hint(status: int, verb: str, resource: str, namespace: str) -> str:
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
            raise ValueError(f"invalid max_attempts {max_attempts!r}: must be at least 1")
        if watch_timeout_s < 1:
            raise ValueError(f"invalid watch_timeout_s {watch_timeout_s!r}: must be at least 1")
        if propagation_policy not in ("Foreground", "Background"):
            raise ValueError(
                f"invalid propagation_policy {propagation_policy!r}: Foreground or Background"
            )
        self.custom_api = custom_api
        self.core_api = core_api
        self._clock = clock
        self._sleeper = sleeper
        self._log = log
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._watch_timeout_s = watch_timeout_s
        self._log_grace_s = log_grace_s
        self._propagation_policy = propagation_policy
        self._cancelling = False

    # --- the API, with retries -------------------------------------------------------------

    def _call(
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
                message = _api_message(error)
                if error.status not in RETRYABLE_STATUS or attempt == self._max_attempts:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise TFJobApiError(
                        f"cannot {what}{tries}: HTTP {error.status} {error.reason}: {message}"
                        + _hint(error.status, verb, resource, spec.namespace),
                        error.status,
                    ) from None
                problem = f"HTTP {error.status} {message}"
                delay = self._delay(attempt)
            except RETRYABLE_ERRORS as error:
                if attempt == self._max_attempts:
                    raise TFJobApiError(
                        f"cannot {what} after {attempt} attempts: the API server is unreachable "
                        f"({type(error).__name__}: {error})"
                    ) from None
                problem = type(error).__name__
                delay = self._delay(attempt)
            self._log(
                f"{what}: {problem}; retrying in {delay:.1f}s "
                f"(attempt {attempt} of {self._max_attempts})"
            )
            self._sleeper(delay)

    def _delay(self, attempt: int) -> float:
        return min(self._max_backoff_s, self._backoff_s * 2 ** (attempt - 1))

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
            raise ValueError(f"invalid timeout_s {timeout_s!r}: must be a number of seconds > 0")
        deadline = self._clock() + timeout_s
        outcome = TFJobOutcome(name=spec.name, state=CANCELLED)
        follower = _LogFollower(self, spec) if forward_logs else None
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
                outcome.deleted = self._delete(spec)
        except TFJobCancelled as cancelled:
            if follower:
                follower.stop(0)
            self._log(f"SIGTERM: deleting TFJob {spec.namespace}/{spec.name}")
            outcome.state = CANCELLED
            outcome.deleted = self._delete(spec)
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
            existing = self._call(
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
            self._call(
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
        observer = _ConditionObserver(spec, outcome, self._log)
        resource_version: str | None = None
        failures = 0
        while True:
            if resource_version is None:
                listed = self._call(
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
                        f"HTTP {error.status} {error.reason}: {_api_message(error)}"
                        + _hint(error.status, "watch", TFJOBS, spec.namespace),
                        error.status,
                    ) from None
                failures = self._watch_failed(spec, failures, f"HTTP {error.status}")
            except RETRYABLE_ERRORS as error:
                failures = self._watch_failed(spec, failures, type(error).__name__)
            finally:
                watch.stop()

    def _watch_failed(self, spec: TFJobSpec, failures: int, problem: str) -> int:
        failures += 1
        if failures >= self._max_attempts:
            raise TFJobApiError(
                f"cannot watch {TFJOBS} for TFJob {spec.namespace}/{spec.name}: "
                f"{problem}, {failures} times in a row"
            )
        delay = self._delay(failures)
        self._log(f"watch of TFJob {spec.name} broke ({problem}); reconnecting in {delay:.1f}s")
        self._sleeper(delay)
        return failures

    def _collect_logs(
        self, spec: TFJobSpec, outcome: TFJobOutcome, follower: _LogFollower | None
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
            pods = self._call(
                "list", "pods", spec, self.core_api.list_namespaced_pod, spec.namespace,
                label_selector=selector,
            ).items  # fmt: skip
            if not pods:
                return ""
            return self._call(
                "get", "pods/log", spec, self.core_api.read_namespaced_pod_log,
                pods[0].metadata.name, spec.namespace, container=CONTAINER_NAME,
                expected=frozenset({400}),
            )  # fmt: skip
        except ApiException as error:
            return f"(no logs: {_api_message(error)})"
        except TFJobApiError as error:
            return f"(no logs: {error})"

    def _events(self, spec: TFJobSpec) -> list[str]:
        """The events of the TFJob and of its pods, oldest first, one line each (or one line
        saying why they cannot be listed: diagnostics never stop the cleanup)."""
        events = []
        try:
            pods = self._call(
                "list", "pods", spec, self.core_api.list_namespaced_pod, spec.namespace,
                label_selector=f"{JOB_NAME_LABEL}={spec.name}",
            ).items  # fmt: skip
            for name in [spec.name, *sorted(p.metadata.name for p in pods)]:
                events += self._call(
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

    def _delete(self, spec: TFJobSpec) -> bool:
        """Delete the TFJob; True once it is gone (deleted now or already)."""
        try:
            self._call(
                "delete", TFJOBS, spec, self.custom_api.delete_namespaced_custom_object,
                GROUP, VERSION, spec.namespace, PLURAL, spec.name,
                body=V1DeleteOptions(propagation_policy=self._propagation_policy),
                expected=frozenset({404}),
            )  # fmt: skip
        except ApiException:
            self._log(f"TFJob {spec.namespace}/{spec.name} was already deleted")
            return True
        self._log(f"deleted TFJob {spec.namespace}/{spec.name}")
        return True

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


class _ConditionObserver:
    """Reads every condition of each version of the TFJob; logs and records the new ones."""

    def __init__(self, spec: TFJobSpec, outcome: TFJobOutcome, log: Callable[[str], None]):
        self._spec = spec
        self._outcome = outcome
        self._log = log
        self._previous: set[tuple] = set()

    def observe(self, job: dict) -> str | None:
        """Record the job's new conditions; Failed or Succeeded when one of them is True."""
        conditions = (job.get("status") or {}).get("conditions") or []
        current = set()
        for c in conditions:
            key = (
                c.get("type"),
                c.get("status"),
                c.get("reason"),
                c.get("lastTransitionTime"),
                c.get("lastUpdateTime"),
            )
            current.add(key)
            if key in self._previous:
                continue
            condition = Condition(
                type=c.get("type", ""),
                status=c.get("status", ""),
                reason=c.get("reason", ""),
                message=c.get("message", ""),
                last_transition_time=c.get("lastTransitionTime", ""),
            )
            self._outcome.conditions.append(condition)
            self._announce(condition)
        self._previous = current
        true = {c.get("type") for c in conditions if c.get("status") == "True"}
        if FAILED in true:
            return FAILED
        if SUCCEEDED in true:
            return SUCCEEDED
        return None

    def _announce(self, condition: Condition) -> None:
        job = f"TFJob {self._spec.namespace}/{self._spec.name}"
        if condition.type == "Restarting" and condition.status == "True":
            self._log(f"{job} is Restarting replicas: {condition.reason}: {condition.message}")
            return
        self._log(
            f"{job}: {condition.type}={condition.status} {condition.reason}: {condition.message}"
        )

    def vanished(self) -> str:
        """The TFJob was deleted by someone else before it ended: a failure."""
        condition = Condition(
            type=FAILED, reason="TFJobDeleted", message="the TFJob was deleted before it ended"
        )
        self._outcome.conditions.append(condition)
        self._log(f"TFJob {self._spec.namespace}/{self._spec.name}: {condition.message}")
        return FAILED


class _LogFollower:
    """Follows the logs of a TFJob's pods in background threads and forwards each line.

    One thread watches the job's pods (label ``training.kubeflow.org/job-name``); for each
    container instance that has started (a pod uid and its restart count) one thread follows
    its log until the container ends. ``stop`` ends the pod watch, lists the pods once more
    (their last events may trail the job's), lets the log streams drain, then cuts them.
    """

    def __init__(self, launcher: TFJobLauncher, spec: TFJobSpec) -> None:
        self._launcher = launcher
        self._spec = spec
        self._core = launcher.core_api
        self._selector = f"{JOB_NAME_LABEL}={spec.name}"
        self._draining = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._logs: dict[str, list[str]] = {}
        self._followed: set[tuple[str, int]] = set()
        self._streams: set[urllib3.HTTPResponse] = set()
        self._watch_stream: urllib3.HTTPResponse | None = None
        self._threads: list[threading.Thread] = []
        self._watcher = threading.Thread(target=self._watch_pods, daemon=True)

    def start(self) -> None:
        self._watcher.start()

    def logs(self) -> dict[str, str]:
        with self._lock:
            return {replica: "".join(lines) for replica, lines in sorted(self._logs.items())}

    def stop(self, grace_s: float) -> None:
        """Stop watching pods; give the log streams ``grace_s`` to end, then cut them."""
        if self._stopping.is_set():
            return
        self._draining.set()
        if grace_s > 0:
            if self._watch_stream is not None:
                _cut(self._watch_stream)
            self._watcher.join(grace_s)
            try:
                self._list_pods()
            except Exception as error:  # a log problem must not fail the job
                self._launcher._log(f"cannot list the pods of TFJob {self._spec.name}: {error}")
            deadline = time.monotonic() + grace_s
            with self._lock:
                threads = list(self._threads)
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        with self._lock:
            streams, threads = list(self._streams), list(self._threads)
        for stream in streams:
            _cut(stream)
        for thread in [self._watcher, *threads]:
            if thread.is_alive():
                thread.join(5)

    def _open(self, fn: Callable, *args: object, **kwargs: object) -> urllib3.HTTPResponse:
        """Open a streaming request and register it so that ``stop`` can cut it."""
        response = fn(*args, _preload_content=False, **kwargs)
        with self._lock:
            self._streams.add(response)
        if self._stopping.is_set():
            _cut(response)
        return response

    def _close(self, response: urllib3.HTTPResponse) -> None:
        with self._lock:
            self._streams.discard(response)
        response.release_conn()

    def _list_pods(self) -> str:
        """Consider every pod of the job; the list's resourceVersion."""
        listed = self._launcher._call(
            "list", "pods", self._spec, self._core.list_namespaced_pod, self._spec.namespace,
            label_selector=self._selector, _preload_content=False,
        )  # fmt: skip
        pods = json.loads(listed.data)
        listed.release_conn()
        for pod in pods.get("items") or []:
            self._consider(pod)
        return pods["metadata"]["resourceVersion"]

    def _watch_pods(self) -> None:
        spec, launcher = self._spec, self._launcher
        resource_version = None
        try:
            while not self._draining.is_set():
                if resource_version is None:
                    resource_version = self._list_pods()
                response = launcher._call(
                    "watch", "pods", spec, self._open, self._core.list_namespaced_pod,
                    spec.namespace, label_selector=self._selector, watch=True,
                    resource_version=resource_version, timeout_seconds=launcher._watch_timeout_s,
                )  # fmt: skip
                self._watch_stream = response
                if self._draining.is_set():
                    _cut(response)
                try:
                    for line in _lines(response):
                        event = json.loads(line)
                        pod = event["object"]
                        if event["type"] == "ERROR":
                            resource_version = None
                            break
                        resource_version = pod["metadata"].get("resourceVersion")
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._consider(pod)
                finally:
                    self._close(response)
        except Exception as error:  # a log problem must not fail the job
            if not self._draining.is_set():
                launcher._log(f"stopped following the logs of TFJob {spec.name}: {error}")

    def _consider(self, pod: dict) -> None:
        """Start following the pod's current container instance if it has started."""
        if self._stopping.is_set() or pod.get("status", {}).get("phase") not in RUNNING_PHASES:
            return
        meta = pod["metadata"]
        statuses = pod["status"].get("containerStatuses") or []
        restarts = max((s.get("restartCount", 0) for s in statuses), default=0)
        key = (meta["uid"], restarts)
        labels = meta.get("labels") or {}
        replica = (
            f"{labels.get(REPLICA_TYPE_LABEL, 'pod').lower()}-"
            f"{labels.get(REPLICA_INDEX_LABEL, meta['name'])}"
        )
        with self._lock:
            if key in self._followed:
                return
            self._followed.add(key)
            thread = threading.Thread(
                target=self._follow, args=(meta["name"], replica, key), daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def _follow(self, pod_name: str, replica: str, key: tuple[str, int]) -> None:
        spec, launcher = self._spec, self._launcher
        try:
            response = launcher._call(
                "get", "pods/log", spec, self._open, self._core.read_namespaced_pod_log,
                pod_name, spec.namespace, container=CONTAINER_NAME, follow=True,
                expected=frozenset({400}),
            )  # fmt: skip
        except ApiException:
            with self._lock:  # the container is not ready yet: the next pod event retries
                self._followed.discard(key)
            return
        except Exception as error:  # a log problem must not fail the job
            launcher._log(f"cannot follow the logs of {replica} ({pod_name}): {error}")
            return
        try:
            for line in _lines(response, keep_ends=True):
                with self._lock:
                    self._logs.setdefault(replica, []).append(line)
                launcher._log(f"[{replica}] {line.rstrip()}")
        except Exception:  # the stream was cut by stop(), or the pod went away
            pass
        finally:
            self._close(response)


def _cut(response: urllib3.HTTPResponse) -> None:
    """Interrupt a read blocked on ``response`` from another thread."""
    with suppress(ValueError, RuntimeError, OSError):  # already released or closed
        response.shutdown()


def _lines(response: urllib3.HTTPResponse, keep_ends: bool = False) -> Iterator[str]:
    """The lines of a streamed response as they arrive (a last line without newline too)."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line or keep_ends:
                yield line.decode("utf-8", "replace") + ("\n" if keep_ends else "")
    if buffer:
        yield buffer.decode("utf-8", "replace") + ("\n" if keep_ends else "")


# --- clients and the launcher pod -------------------------------------------------------------


def kubernetes_clients(
    config: Configuration | None = None,
) -> tuple[CustomObjectsApi, CoreV1Api]:
    """Clients for the launcher: from ``config`` if given, else the in-cluster service account
    (inside a pod), else the kubeconfig (``KUBECONFIG``, read now rather than when the
    kubernetes package was imported, or ``~/.kube/config``)."""
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
                raise KfpPachydermError(
                    "no Kubernetes configuration: not inside a pod (no KUBERNETES_SERVICE_HOST) "
                    f"and no usable kubeconfig (set KUBECONFIG): {error}"
                ) from None
    api_client = ApiClient(config)
    return CustomObjectsApi(api_client), CoreV1Api(api_client)


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
    in_pod = bool(environ.get("KUBERNETES_SERVICE_HOST"))
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
            f"{error.reason}: {_api_message(error)}",
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
