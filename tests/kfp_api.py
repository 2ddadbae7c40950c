"""A test server for the part of the Kubeflow Pipelines v2beta1 REST API that ``kfp.Client``
uses to submit and follow runs: health, experiments (list by name, create), runs (create,
get). It keeps what was submitted, and a test moves runs through their states."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from .json_http import JsonHandler

PREFIX = "/apis/v2beta1"


def _filtered_names(query: dict[str, list[str]]) -> set[str] | None:
    """The names an API filter's EQUALS predicates ask for (None: no filter)."""
    if "filter" not in query:
        return None
    predicates = json.loads(query["filter"][0]).get("predicates", [])
    return {p.get("stringValue", p.get("string_value")) for p in predicates}


class KfpApi:
    """The server; ``host`` is what ``kfp.Client(host=...)`` takes."""

    def __init__(self) -> None:
        self.experiments: dict[str, dict] = {}
        self.first_state = "PENDING"  # the state a new run starts in
        self.runs: dict[str, dict] = {}
        self.lock = threading.Lock()
        api = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == f"{PREFIX}/healthz":
                    return self._reply(200, {"multi_user": False})
                if url.path == f"{PREFIX}/experiments":
                    query = parse_qs(url.query)
                    wanted = _filtered_names(query)
                    with api.lock:
                        found = [
                            e
                            for e in api.experiments.values()
                            if wanted is None or e["display_name"] in wanted
                        ]
                    return self._reply(200, {"experiments": found, "total_size": len(found)})
                if url.path == f"{PREFIX}/runs":
                    names = _filtered_names(parse_qs(url.query))
                    with api.lock:
                        found = [
                            {k: v for k, v in run.items() if k != "pipeline_spec"}
                            for run in reversed(list(api.runs.values()))
                            if names is None or run.get("display_name") in names
                        ]
                    return self._reply(200, {"runs": found, "total_size": len(found)})
                if url.path.startswith(f"{PREFIX}/runs/"):
                    run_id = url.path.rsplit("/", 1)[1]
                    with api.lock:
                        run = api.runs.get(run_id)
                    if run is None:
                        return self._reply(404, {"error": f"run {run_id} not found", "code": 5})
                    return self._reply(200, {k: v for k, v in run.items() if k != "pipeline_spec"})
                self._reply(404, {"error": f"no route {url.path}", "code": 5})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                with api.lock:
                    if url.path == f"{PREFIX}/experiments":
                        experiment = {**body, "experiment_id": uuid.uuid4().hex}
                        api.experiments[experiment["experiment_id"]] = experiment
                        return self._reply(200, experiment)
                    if url.path == f"{PREFIX}/runs":
                        run = {**body, "run_id": uuid.uuid4().hex, "state": api.first_state}
                        api.runs[run["run_id"]] = run
                        return self._reply(200, run)
                self._reply(404, {"error": f"no route {url.path}", "code": 5})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def set_state(self, run_id: str, state: str) -> None:
        with self.lock:
            self.runs[run_id]["state"] = state

    def stop(self) -> None:
        self._server.shutdown()
