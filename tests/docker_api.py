"""A test Docker Engine API server backed by podman, so the real ``kfp.local.DockerRunner`` and
the real ``docker`` client run components in the images this checkout builds.

No Docker engine runs here, and podman's own Docker-compatible service does not suit kfp.local:
a container created with ``AutoRemove`` is removed when it exits, so kfp's ``logs(stream=True)``
ends early (lines are lost) and its ``wait()`` gets "no such container", which kfp takes for
exit code 0, so a failing step would pass. This server speaks the subset of the Engine API that
``docker.from_env()``, ``images.list()``, ``containers.run(detach=True)``, ``logs(stream=True)``
and ``wait()`` use, and carries each call out with the podman CLI; ``AutoRemove`` is honoured
after ``wait`` has answered with the real exit status. Followed logs are Docker's multiplexed
stream (8-byte frame headers, stdout 1 and stderr 2). Every create request is recorded, so a test
can assert the image and command a component ran with.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from kfp import local

from .images import podman_env
from .json_http import JsonHandler

API_VERSION = "1.41"
_VERSIONED = re.compile(r"^/v\d+\.\d+")


def host_network_runner(environment: dict[str, str]) -> local.DockerRunner:
    """kfp.local's DockerRunner for steps that reach servers on loopback: the host network,
    ``environment`` in every container, and this user, who made kfp.local's task folders that
    the step writes into."""
    return local.DockerRunner(network_mode="host", user=str(os.getuid()), environment=environment)


def _podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True)


class DockerApi:
    """Serves on a free loopback port; ``url`` is what ``DOCKER_HOST`` takes."""

    def __init__(self) -> None:
        self.created: list[dict] = []
        self._auto_remove: set[str] = set()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> DockerApi:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        for container in self._auto_remove:
            _podman("rm", "-f", container)

    def _create(self, body: dict, name: str | None) -> tuple[int, dict]:
        host = body.get("HostConfig") or {}
        args = ["create"]
        if name:
            args += ["--name", name]
        for bind in host.get("Binds") or []:
            os.makedirs(bind.split(":", 1)[0], exist_ok=True)  # as Docker makes a missing one
            args += ["-v", bind]
        for env in body.get("Env") or []:
            args += ["-e", env]
        if host.get("NetworkMode") and host["NetworkMode"] != "default":
            args += ["--network", host["NetworkMode"]]
        if body.get("User"):
            args += ["--user", body["User"]]
        if body.get("WorkingDir"):
            args += ["--workdir", body["WorkingDir"]]
        if body.get("Entrypoint") is not None:
            args += ["--entrypoint", json.dumps(body["Entrypoint"])]
        done = _podman(*args, body["Image"], *(body.get("Cmd") or []))
        if done.returncode != 0:
            return 404 if "unknown" in done.stderr else 500, {"message": done.stderr.strip()}
        container = done.stdout.strip().splitlines()[-1]
        with self._lock:
            self.created.append(body)
            if host.get("AutoRemove"):
                self._auto_remove.add(container)
        return 201, {"Id": container, "Warnings": []}

    def _wait(self, container: str) -> tuple[int, dict]:
        done = _podman("wait", container)
        if done.returncode != 0:
            return 404, {"message": done.stderr.strip()}
        status = int(done.stdout.strip().splitlines()[-1])
        with self._lock:
            remove = container in self._auto_remove
            self._auto_remove.discard(container)
        if remove:
            _podman("rm", "-f", container)
        return 200, {"StatusCode": status, "Error": None}

    def _handler(self):
        api = self

        class Handler(JsonHandler):
            protocol_version = "HTTP/1.1"

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                path = _VERSIONED.sub("", url.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                parts = path.strip("/").split("/")
                if method == "GET" and path in ("/_ping",):
                    return self._text("OK")
                if method == "GET" and path == "/version":
                    return self._reply(200, {"ApiVersion": API_VERSION, "Version": "podman"})
                if method == "GET" and path == "/info":
                    return self._reply(200, {"SecurityOptions": [], "Name": "podman"})
                if method == "GET" and path == "/images/json":
                    return self._reply(200, self._images())
                if method == "GET" and parts[0] == "images" and parts[-1] == "json":
                    name = "/".join(parts[1:-1]).removeprefix("sha256:")
                    done = _podman("image", "inspect", name)
                    if done.returncode != 0:
                        return self._reply(404, {"message": f"no such image: {name}"})
                    (found,) = json.loads(done.stdout)
                    return self._reply(200, {**found, "Id": f"sha256:{found['Id']}"})
                if method == "POST" and path == "/images/create":
                    ref = query.get("fromImage", "") + (
                        f":{query['tag']}" if "tag" in query else ""
                    )
                    done = _podman("pull", ref)
                    if done.returncode != 0:
                        return self._reply(404, {"message": done.stderr.strip()})
                    return self._reply(200, {"status": f"pulled {ref}"})
                if method == "POST" and path == "/containers/create":
                    return self._reply(*api._create(body, query.get("name")))
                if len(parts) >= 2 and parts[0] == "containers":
                    return self._container(method, parts[1], parts[2:], query)
                self._reply(404, {"message": f"{method} {path} is not served here"})

            def _container(self, method: str, container: str, rest: list[str], query) -> None:
                if method == "POST" and rest == ["start"]:
                    done = _podman("start", container)
                    if done.returncode != 0:
                        return self._reply(500, {"message": done.stderr.strip()})
                    return self._empty(204)
                if method == "GET" and rest == ["json"]:
                    done = _podman("inspect", "--type", "container", container)
                    if done.returncode != 0:
                        return self._reply(404, {"message": f"no such container: {container}"})
                    (found,) = json.loads(done.stdout)
                    return self._reply(200, found)
                if method == "GET" and rest == ["logs"]:
                    return self._logs(container, follow=query.get("follow") in ("1", "true"))
                if method == "POST" and rest == ["wait"]:
                    return self._reply(*api._wait(container))
                if method == "DELETE" and not rest:
                    _podman("rm", "-f", container)
                    return self._empty(204)
                self._reply(404, {"message": f"{method} containers/{'/'.join(rest)} not served"})

            def _images(self) -> list[dict]:
                listed = json.loads(_podman("images", "--format", "json").stdout or "[]")
                return [
                    {"Id": f"sha256:{i['Id']}", "RepoTags": i.get("Names") or [],
                     "RepoDigests": i.get("RepoDigests") or [], "Size": i.get("Size", 0),
                     "Created": i.get("Created", 0), "Labels": i.get("Labels")}
                    for i in listed
                ]  # fmt: skip

            def _logs(self, container: str, follow: bool) -> None:
                command = ["podman", "logs", *(["--follow"] if follow else []), container]
                proc = subprocess.Popen(
                    command, env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.docker.raw-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                write = threading.Lock()

                def pump(stream, kind: int) -> None:
                    for chunk in iter(lambda: stream.read1(65536), b""):
                        with write:
                            self.wfile.write(struct.pack(">BxxxL", kind, len(chunk)) + chunk)
                            self.wfile.flush()

                readers = [
                    threading.Thread(target=pump, args=(proc.stdout, 1)),
                    threading.Thread(target=pump, args=(proc.stderr, 2)),
                ]
                for reader in readers:
                    reader.start()
                for reader in readers:
                    reader.join()
                proc.wait()

            def _text(self, text: str) -> None:
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _empty(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

            def do_HEAD(self) -> None:
                self._route("GET")

        return Handler
