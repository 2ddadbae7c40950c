"""Following the logs of a TFJob's pods while it runs, so the step's log shows each replica's
lines as they are written, prefixed with the replica (``[worker-1] ...``).

Log problems never fail the job: they are logged and the follower stops following.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress

import urllib3
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from kfp_pachyderm.tfjob.k8s_api import (
    JOB_NAME_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
    TFJobRetryPolicy,
)
from kfp_pachyderm.tfjob.spec import CONTAINER_NAME, TFJobSpec

RUNNING_PHASES = ("Running", "Succeeded", "Failed")


class LogFollower:
    """Follows the logs of a TFJob's pods in background threads and forwards each line.

    One thread watches the job's pods (label ``training.kubeflow.org/job-name``); for each
    container instance that has started (a pod uid and its restart count) one thread follows
    its log until the container ends. ``stop`` ends the pod watch, lists the pods once more
    (their last events may trail the job's), lets the log streams drain, then cuts them.
    """

    def __init__(
        self,
        spec: TFJobSpec,
        core_api: CoreV1Api,
        retry: TFJobRetryPolicy,
        log: Callable[[str], None],
        watch_timeout_s: int,
    ) -> None:
        """``retry`` makes the API calls; ``log`` gets the lines and the follower's problems;
        ``watch_timeout_s`` is the server-side timeout of one pod watch."""
        self._spec = spec
        self._core = core_api
        self._retry = retry
        self._log = log
        self._watch_timeout_s = watch_timeout_s
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
                self._log(f"cannot list the pods of TFJob {self._spec.name}: {error}")
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
        listed = self._retry.job_call(
            "list", "pods", self._spec, self._core.list_namespaced_pod, self._spec.namespace,
            label_selector=self._selector, _preload_content=False,
        )  # fmt: skip
        pods = json.loads(listed.data)
        listed.release_conn()
        for pod in pods.get("items") or []:
            self._consider(pod)
        return pods["metadata"]["resourceVersion"]

    def _watch_pods(self) -> None:
        spec = self._spec
        resource_version = None
        try:
            while not self._draining.is_set():
                if resource_version is None:
                    resource_version = self._list_pods()
                response = self._retry.job_call(
                    "watch", "pods", spec, self._open, self._core.list_namespaced_pod,
                    spec.namespace, label_selector=self._selector, watch=True,
                    resource_version=resource_version, timeout_seconds=self._watch_timeout_s,
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
                self._log(f"stopped following the logs of TFJob {spec.name}: {error}")

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
        spec = self._spec
        try:
            response = self._retry.job_call(
                "get", "pods/log", spec, self._open, self._core.read_namespaced_pod_log,
                pod_name, spec.namespace, container=CONTAINER_NAME, follow=True,
                expected=frozenset({400}),
            )  # fmt: skip
        except ApiException:
            with self._lock:  # the container is not ready yet: the next pod event retries
                self._followed.discard(key)
            return
        except Exception as error:  # a log problem must not fail the job
            self._log(f"cannot follow the logs of {replica} ({pod_name}): {error}")
            return
        try:
            for line in _lines(response, keep_ends=True):
                with self._lock:
                    self._logs.setdefault(replica, []).append(line)
                self._log(f"[{replica}] {line.rstrip()}")
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
