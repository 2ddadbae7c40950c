"""A test Kubernetes API server: the subset the TFJob launcher and the model deployer use, over
real HTTP on loopback.

No real API server can run here, so the real ``kubernetes`` client talks HTTP to this one. It
serves the custom objects of the CRDs it is given (``crds=``, of those in :data:`KINDS`: TFJobs,
KServe InferenceServices and ServingRuntimes, Seldon Core 2 Models; a custom resource that is
not installed answers 404 as the real server does) with create, get, replace, list with
fieldSelector, watch with resourceVersion and a server-side timeoutSeconds, and delete; pods
(get, list and watch by labelSelector), pod logs (with ``follow=true`` streamed until the
container ends), events (list with fieldSelector), and secrets and service accounts (create,
get, replace). Watches and followed logs are chunked HTTP streams, one JSON line or log chunk
per chunk, as the real API server sends them.

Writes behave as the real server's: a replace (PUT) must carry the name of its URL, and with a
stale ``metadata.resourceVersion`` gets 409 Conflict (a custom object's replace must carry one);
``metadata.generation`` starts at 1 and grows when anything but metadata and status changes; a
replace keeps a custom object's status (the status subresource is written apart); a Secret's
``stringData`` is stored base64-encoded in ``data``.

A test plays the operators and the kubelet through methods: :meth:`K8sApi.transition` sets
TFJob conditions the way the Training Operator does, :meth:`K8sApi.set_status` writes any
object's status (as KServe or Seldon would), :meth:`add_pod`, :meth:`append_log`,
:meth:`finish_pod` and :meth:`restart_pod` run replicas, :meth:`add_event` records events,
:meth:`create_object` stores an object someone else created, :meth:`compact` expires
resourceVersions (open watches get 410 Gone), and :meth:`fail_next` answers the next matching
requests with an error status. Every request is recorded (method, path, query, JSON body), so a
test can assert the exact manifest that was POSTed.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kubernetes.client import Configuration

JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
CONTAINER = "tensorflow"

# resource -> (apiVersion, kind) of its objects
KINDS = {
    "tfjobs.kubeflow.org": ("kubeflow.org/v1", "TFJob"),
    "inferenceservices.serving.kserve.io": ("serving.kserve.io/v1beta1", "InferenceService"),
    "servingruntimes.serving.kserve.io": ("serving.kserve.io/v1alpha1", "ServingRuntime"),
    "models.mlops.seldon.io": ("mlops.seldon.io/v1alpha1", "Model"),
    "servers.mlops.seldon.io": ("mlops.seldon.io/v1alpha1", "Server"),
    "pods": ("v1", "Pod"),
    "events": ("v1", "Event"),
    "secrets": ("v1", "Secret"),
    "serviceaccounts": ("v1", "ServiceAccount"),
}
# The core resources a client may create and replace (pods and events are the test's to write).
WRITABLE_CORE = frozenset({"secrets", "serviceaccounts"})

CUSTOM_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?$"
)
CORE_PATH = re.compile(
    r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>pods|events|secrets|serviceaccounts)"
    r"(?:/(?P<name>[^/]+)(?P<log>/log)?)?$"
)
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "AlreadyExists",  # or Conflict, given with the error
    405: "MethodNotAllowed",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def now() -> str:
    """A Kubernetes timestamp (RFC 3339, whole seconds, as metav1.Time serializes)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_object(code: int, message: str, reason: str | None = None) -> dict:
    """The Status object the API server answers an error with."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Fault:
    """The next ``times`` requests of ``method`` on a matching path get ``status``."""

    method: str
    path: re.Pattern
    status: int
    message: str
    times: int


@dataclass
class ContainerRun:
    """One instance of a pod's container: its log so far, and whether it has ended."""

    chunks: list[str] = field(default_factory=list)
    ended: bool = False


class _HttpError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


def _content(obj: dict) -> dict:
    """What ``metadata.generation`` counts changes of: all but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}


def _store_secret_data(obj: dict) -> None:
    """Merge a Secret's stringData into its data, base64-encoded, as the API server does."""
    strings = obj.pop("stringData", None) or {}
    data = obj.setdefault("data", {})
    for key, value in strings.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def _path_value(obj: dict, dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _matches(obj: dict, field_selector: str | None, label_selector: str | None) -> bool:
    """Equality-based field and label selectors (``a=b``, ``a==b``, ``a!=b``, ``key``)."""
    for term in filter(None, (field_selector or "").split(",")):
        key, negate, value = _split_term(term)
        if (_path_value(obj, key) == value) == negate:
            return False
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (label_selector or "").split(",")):
        if "=" not in term:
            if term not in labels:
                return False
            continue
        key, negate, value = _split_term(term)
        if (labels.get(key) == value) == negate:
            return False
    return True


def _flag(query: dict[str, str], name: str) -> bool:
    """A boolean query parameter, parsed like Go's strconv.ParseBool as the API server does."""
    return query.get(name, "").lower() in ("1", "t", "true")


def _split_term(term: str) -> tuple[str, bool, str]:
    if "!=" in term:
        key, value = term.split("!=", 1)
        return key.strip(), True, value.strip()
    key, value = term.replace("==", "=").split("=", 1)
    return key.strip(), False, value.strip()


class K8sApi:
    """The test API server. Use as a context manager; ``url`` is where it listens."""

    def __init__(self, crds: tuple[str, ...] = ("tfjobs.kubeflow.org",)) -> None:
        self.crds = set(crds)
        self._cond = threading.Condition()
        self._rv = 1000
        self._compacted = 0
        self._epoch = 0
        self._closing = False
        self._objects: dict[tuple[str, str, str], dict] = {}
        self._history: list[tuple[int, str, str, str, dict]] = []
        self._containers: dict[tuple[str, str], list[ContainerRun]] = {}
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle and clients ---------------------------------------------------------------

    def __enter__(self) -> K8sApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def configuration(self) -> Configuration:
        """A client configuration for this server."""
        return Configuration(host=self.url)

    # --- what the launcher sent --------------------------------------------------------------

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """The recorded requests, optionally only one method and paths matching a regex."""
        with self._cond:
            return [
                r
                for r in self._requests
                if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))
            ]

    def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        """Block until ``predicate()`` is true; it is rechecked after every change to the server
        and every 20 ms, for predicates on the client's side."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self._cond.wait(min(remaining, 0.02))

    def wait_for_request(
        self, method: str, path: str, count: int = 1, timeout: float = 10.0
    ) -> list[Request]:
        """Wait until at least ``count`` matching requests arrived; return them."""
        self.wait_for(lambda: len(self.requests(method, path)) >= count, timeout)
        return self.requests(method, path)

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        message: str = "injected failure",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests of ``method`` on paths matching ``path`` (a regex)
        with ``status`` and a Status object carrying ``message``."""
        with self._cond:
            self._faults.append(Fault(method, re.compile(path), status, message, times))

    # --- objects -----------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        """A copy of a stored object, or None."""
        with self._cond:
            obj = self._objects.get((resource, namespace, name))
            return copy.deepcopy(obj)

    def tfjob(self, namespace: str, name: str) -> dict | None:
        return self.get("tfjobs.kubeflow.org", namespace, name)

    def create_tfjob(self, manifest: dict) -> dict:
        """Store a TFJob as if someone had created it (no request is recorded)."""
        with self._cond:
            return self._create("tfjobs.kubeflow.org", manifest["metadata"]["namespace"], manifest)

    def delete_tfjob(self, namespace: str, name: str) -> None:
        """Delete a TFJob as someone else would (no request is recorded)."""
        with self._cond:
            self._delete("tfjobs.kubeflow.org", namespace, name)

    def create_object(self, resource: str, manifest: dict) -> dict:
        """Store any object as if someone had created it (no request is recorded)."""
        with self._cond:
            return self._create(resource, manifest["metadata"]["namespace"], manifest)

    def set_status(self, resource: str, namespace: str, name: str, status: dict) -> None:
        """Replace an object's status, as its operator writes the status subresource (a new
        resourceVersion, the same generation)."""
        self._update(
            resource, namespace, name, lambda obj: obj.__setitem__("status", copy.deepcopy(status))
        )

    def transition(
        self, namespace: str, name: str, type_: str, message: str = "", reason: str = ""
    ) -> None:
        """Set condition ``type_`` to True the way the Training Operator's setCondition does:
        Running and Restarting replace each other, Succeeded and Failed set Running to False,
        and nothing changes once the job has Failed."""

        def mutate(job: dict) -> None:
            status = job.setdefault("status", {})
            conditions = status.setdefault("conditions", [])
            if any(c["type"] == "Failed" and c["status"] == "True" for c in conditions):
                return
            kept = []
            for c in conditions:
                if c["type"] == type_ or {c["type"], type_} == {"Running", "Restarting"}:
                    continue
                if type_ in ("Succeeded", "Failed") and c["type"] == "Running":
                    c = {**c, "status": "False"}
                kept.append(c)
            stamp = now()
            kept.append(
                {
                    "type": type_,
                    "status": "True",
                    "reason": reason or f"TFJob{type_}",
                    "message": message or f"TFJob {namespace}/{name} is {type_.lower()}.",
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                }
            )
            status["conditions"] = kept
            if type_ in ("Succeeded", "Failed"):
                status["completionTime"] = stamp

        self._update("tfjobs.kubeflow.org", namespace, name, mutate)

    def set_conditions(self, namespace: str, name: str, conditions: list[dict]) -> None:
        """Replace the TFJob's status.conditions as given."""
        self._update(
            "tfjobs.kubeflow.org",
            namespace,
            name,
            lambda job: job.setdefault("status", {}).__setitem__("conditions", conditions),
        )

    def touch(self, namespace: str, name: str) -> None:
        """A change that is not a condition (a new resourceVersion and a MODIFIED event)."""
        self._update(
            "tfjobs.kubeflow.org",
            namespace,
            name,
            lambda job: job.setdefault("status", {}).__setitem__("lastReconcileTime", now()),
        )

    def compact(self) -> None:
        """Expire every resourceVersion so far: open watches end with a 410 Gone event and a
        watch from an older resourceVersion is refused the same way, until the client lists."""
        with self._cond:
            self._rv += 1
            self._compacted = self._rv
            self._epoch += 1
            self._cond.notify_all()

    # --- pods, logs, events ------------------------------------------------------------------

    def add_pod(
        self,
        namespace: str,
        job_name: str,
        replica_type: str,
        index: int,
        phase: str = "Running",
    ) -> str:
        """A replica pod with the operator's labels; returns its name."""
        name = f"{job_name}-{replica_type.lower()}-{index}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    JOB_NAME_LABEL: job_name,
                    REPLICA_TYPE_LABEL: replica_type.lower(),
                    REPLICA_INDEX_LABEL: str(index),
                },
            },
            "spec": {"containers": [{"name": CONTAINER, "image": "trainer:test"}]},
            "status": {
                "phase": phase,
                "containerStatuses": [
                    {
                        "name": CONTAINER,
                        "image": "trainer:test",
                        "imageID": "",
                        "ready": phase == "Running",
                        "restartCount": 0,
                    }
                ],
            },
        }
        with self._cond:
            self._containers[(namespace, name)] = [ContainerRun()]
            self._create("pods", namespace, pod)
        return name

    def set_phase(self, namespace: str, pod: str, phase: str) -> None:
        """Move a pod to another phase (Pending to Running, for instance)."""

        def mutate(obj: dict) -> None:
            obj["status"]["phase"] = phase
            obj["status"]["containerStatuses"][0]["ready"] = phase == "Running"

        self._update("pods", namespace, pod, mutate)

    def append_log(self, namespace: str, pod: str, text: str) -> None:
        """The running container writes ``text``."""
        with self._cond:
            self._containers[(namespace, pod)][-1].chunks.append(text)
            self._cond.notify_all()

    def finish_pod(
        self, namespace: str, pod: str, phase: str = "Succeeded", exit_code: int = 0
    ) -> None:
        """The container exits: its log streams end and the pod reaches ``phase``."""

        def mutate(obj: dict) -> None:
            obj["status"]["phase"] = phase
            status = obj["status"]["containerStatuses"][0]
            status["ready"] = False
            status["state"] = {"terminated": {"exitCode": exit_code, "finishedAt": now()}}

        with self._cond:
            self._containers[(namespace, pod)][-1].ended = True
            self._update("pods", namespace, pod, mutate)

    def restart_pod(self, namespace: str, pod: str) -> None:
        """The container exits and the kubelet starts a new one (restartCount + 1)."""

        def mutate(obj: dict) -> None:
            obj["status"]["containerStatuses"][0]["restartCount"] += 1

        with self._cond:
            runs = self._containers[(namespace, pod)]
            runs[-1].ended = True
            runs.append(ContainerRun())
            self._update("pods", namespace, pod, mutate)

    def add_event(
        self,
        namespace: str,
        kind: str,
        name: str,
        reason: str,
        message: str,
        type_: str = "Warning",
    ) -> None:
        """An event about ``kind/name``."""
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
        }
        with self._cond:
            self._create("events", namespace, event)

    # --- the store (callers hold self._cond) -------------------------------------------------

    def _bump(self, resource: str, namespace: str, kind: str, obj: dict) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._history.append((self._rv, resource, namespace, kind, copy.deepcopy(obj)))
        self._cond.notify_all()

    def _create(self, resource: str, namespace: str, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (resource, namespace, meta["name"])
        if key in self._objects:
            raise _HttpError(409, f'{resource} "{meta["name"]}" already exists')
        if meta.get("resourceVersion"):
            raise _HttpError(500, "resourceVersion should not be set on objects to be created")
        meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now())
        meta["generation"] = 1
        if resource == "secrets":
            _store_secret_data(obj)
        self._objects[key] = obj
        self._bump(resource, namespace, "ADDED", obj)
        return copy.deepcopy(obj)

    def _replace(self, resource: str, namespace: str, name: str, body: dict, custom: bool) -> dict:
        """A PUT: the whole object but its status (for custom objects, whose status is a
        subresource), checked against the stored resourceVersion."""
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") != name:
            raise _HttpError(
                400, f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )  # fmt: skip
        if meta.setdefault("namespace", namespace) != namespace:
            raise _HttpError(400, "the namespace of the object does not match the path")
        old = self._objects.get((resource, namespace, name))
        if old is None:
            raise _HttpError(404, f'{resource} "{name}" not found')
        version = meta.get("resourceVersion")
        if not version and custom:
            raise _HttpError(
                422, f'{resource} "{name}" is invalid: metadata.resourceVersion: Invalid value: '
                "0x0: must be specified for an update"
            )  # fmt: skip
        if version and version != old["metadata"]["resourceVersion"]:
            raise _HttpError(
                409,
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                "Conflict",
            )
        if resource == "secrets":
            _store_secret_data(obj)
        for key in ("uid", "creationTimestamp", "generation"):
            meta[key] = old["metadata"][key]
        if _content(obj) != _content(old):
            meta["generation"] += 1
        if custom:
            obj.pop("status", None)
            if "status" in old:
                obj["status"] = old["status"]
        self._objects[(resource, namespace, name)] = obj
        self._bump(resource, namespace, "MODIFIED", obj)
        return copy.deepcopy(obj)

    def _update(
        self, resource: str, namespace: str, name: str, mutate: Callable[[dict], None]
    ) -> None:
        with self._cond:
            obj = self._objects[(resource, namespace, name)]
            mutate(obj)
            self._bump(resource, namespace, "MODIFIED", obj)

    def _delete(self, resource: str, namespace: str, name: str) -> dict:
        obj = self._objects.pop((resource, namespace, name), None)
        if obj is None:
            raise _HttpError(404, f'{resource} "{name}" not found')
        self._bump(resource, namespace, "DELETED", obj)
        if resource == "tfjobs.kubeflow.org":  # the garbage collector takes the job's pods
            for (res, ns, pod), pod_obj in list(self._objects.items()):
                labels = pod_obj["metadata"].get("labels") or {}
                if res == "pods" and ns == namespace and labels.get(JOB_NAME_LABEL) == name:
                    self._containers[(ns, pod)][-1].ended = True
                    self._delete("pods", ns, pod)
        return obj

    def _list(self, resource: str, namespace: str, query: dict[str, str]) -> dict:
        api_version, kind = KINDS[resource]
        items = [
            copy.deepcopy(obj)
            for (res, ns, _), obj in sorted(self._objects.items())
            if res == resource
            and ns == namespace
            and _matches(obj, query.get("fieldSelector"), query.get("labelSelector"))
        ]
        return {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    # --- request handling --------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self._cond:
            self._requests.append(Request(method, url.path, query, body))
            self._cond.notify_all()
            fault = next(
                (f for f in self._faults if f.method == method and f.path.search(url.path)), None
            )
            if fault:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
        if fault:
            _send_json(handler, fault.status, status_object(fault.status, fault.message))
            return
        try:
            self._route(handler, method, url.path, query, body)
        except _HttpError as error:
            _send_json(handler, error.code, status_object(error.code, str(error), error.reason))

    def _route(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, query: dict, body: Any
    ) -> None:
        custom = CUSTOM_PATH.match(path)
        core = CORE_PATH.match(path)
        if custom:
            resource = f"{custom['plural']}.{custom['group']}"
            served = f"{custom['group']}/{custom['version']}"
            if resource not in self.crds or KINDS.get(resource, ("",))[0] != served:
                raise _HttpError(404, "the server could not find the requested resource")
            namespace, name = custom["ns"], custom["name"]
        elif core:
            resource, namespace, name = core["plural"], core["ns"], core["name"]
        else:
            raise _HttpError(404, "the server could not find the requested resource")
        if core and core["log"]:
            if method != "GET":
                raise _HttpError(405, "method not allowed")
            self._pod_log(handler, namespace, name, query)
            return
        if method == "GET" and name is None and _flag(query, "watch"):
            self._watch(handler, resource, namespace, query)
            return
        with self._cond:
            if method == "GET" and name is None:
                reply = (200, self._list(resource, namespace, query))
            elif method == "GET":
                obj = self._objects.get((resource, namespace, name))
                if obj is None:
                    raise _HttpError(404, f'{resource} "{name}" not found')
                reply = (200, copy.deepcopy(obj))
            elif method == "POST" and name is None and (custom or resource in WRITABLE_CORE):
                if (body or {}).get("metadata", {}).get("namespace", namespace) != namespace:
                    raise _HttpError(400, "the namespace of the object does not match the path")
                reply = (201, self._create(resource, namespace, body))
            elif method == "PUT" and name is not None and (custom or resource in WRITABLE_CORE):
                reply = (200, self._replace(resource, namespace, name, body or {}, bool(custom)))
            elif method == "DELETE" and name is not None and custom:
                self._delete(resource, namespace, name)
                reply = (200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
            else:
                raise _HttpError(405, f"{method} is not supported on {path}")
        _send_json(handler, *reply)

    def _watch(
        self, handler: BaseHTTPRequestHandler, resource: str, namespace: str, query: dict
    ) -> None:
        deadline = time.monotonic() + float(query.get("timeoutSeconds", 1800))
        selectors = (query.get("fieldSelector"), query.get("labelSelector"))
        with self._cond:
            epoch = self._epoch
            start = query.get("resourceVersion")
            if start in (None, "", "0"):
                pending = [
                    {"type": "ADDED", "object": obj}
                    for obj in self._list(resource, namespace, query)["items"]
                ]
                since = self._rv
            else:
                pending, since = [], int(start)
        _start_stream(handler, "application/json")
        try:
            while True:
                gone = False
                with self._cond:
                    while not pending:
                        if since < self._compacted or self._epoch != epoch:
                            gone = True
                            break
                        fresh = [h for h in self._history if h[0] > since]
                        if fresh:
                            since = fresh[-1][0]
                        pending = [
                            {"type": kind, "object": copy.deepcopy(obj)}
                            for _, res, ns, kind, obj in fresh
                            if res == resource and ns == namespace and _matches(obj, *selectors)
                        ]
                        remaining = deadline - time.monotonic()
                        if pending or self._closing or remaining <= 0:
                            break
                        self._cond.wait(remaining)
                if gone:
                    error = status_object(410, f"too old resource version: {since}")
                    _chunk(handler, json.dumps({"type": "ERROR", "object": error}) + "\n")
                    break
                if not pending:
                    break
                for event in pending:
                    _chunk(handler, json.dumps(event) + "\n")
                pending = []
            _end_stream(handler)
        except OSError:
            handler.close_connection = True  # the client went away

    def _pod_log(
        self, handler: BaseHTTPRequestHandler, namespace: str, name: str, query: dict
    ) -> None:
        container = query.get("container", CONTAINER)
        with self._cond:
            pod = self._objects.get(("pods", namespace, name))
            if pod is None:
                raise _HttpError(404, f'pods "{name}" not found')
            if container != CONTAINER:
                raise _HttpError(400, f"container {container} is not valid for pod {name}")
            if pod["status"]["phase"] == "Pending":
                raise _HttpError(
                    400,
                    f'container "{container}" in pod "{name}" is waiting to start: '
                    "ContainerCreating",
                )
            runs = self._containers[(namespace, name)]
            if _flag(query, "previous"):
                if len(runs) < 2:
                    raise _HttpError(
                        400, f'previous terminated container "{container}" in pod "{name}" '
                        "not found"
                    )  # fmt: skip
                run = runs[-2]
            else:
                run = runs[-1]
            follow = _flag(query, "follow")
            if not follow:
                text = "".join(run.chunks).encode()
        if not follow:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(text)))
            handler.end_headers()
            handler.wfile.write(text)
            return
        _start_stream(handler, "text/plain")
        sent = 0
        try:
            while True:
                with self._cond:
                    while len(run.chunks) == sent and not run.ended and not self._closing:
                        self._cond.wait()
                    fresh = run.chunks[sent:]
                    sent += len(fresh)
                    done = (run.ended or self._closing) and sent == len(run.chunks)
                for text in fresh:
                    _chunk(handler, text)
                if done:
                    break
            _end_stream(handler)
        except OSError:
            handler.close_connection = True


def _send_json(handler: BaseHTTPRequestHandler, code: int, obj: dict) -> None:
    data = json.dumps(obj).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _start_stream(handler: BaseHTTPRequestHandler, content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()


def _chunk(handler: BaseHTTPRequestHandler, text: str) -> None:
    data = text.encode()
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def _end_stream(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def _handler_class(api: K8sApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as Go's net/http: no 40 ms delayed-ACK stalls

        def do_GET(self) -> None:
            api._handle(self, "GET")

        def do_POST(self) -> None:
            api._handle(self, "POST")

        def do_PUT(self) -> None:
            api._handle(self, "PUT")

        def do_DELETE(self) -> None:
            api._handle(self, "DELETE")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class Recorder:
    """The log, clock and sleeper injected into a launcher or deployer, seen by the test:
    :meth:`sleep` advances the clock at once and yields a moment of real time to a test thread
    playing the operator; ``sleeps`` lists every wait asked for."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.sleeps: list[float] = []
        self.now = 0.0
        self._lock = threading.Lock()

    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        time.sleep(0.002)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)
