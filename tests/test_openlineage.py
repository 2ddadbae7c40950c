"""OpenLineage events: shape checked with JSON Schema, written to files and POSTed over HTTP.

The schema below encodes what the OpenLineage 2-0-2 spec requires of a RunEvent, its run, job,
datasets and facets (required fields, the runId UUID format, the eventType values, facets'
``_producer``/``_schemaURL``). The official OpenLineage.json is not in any package this
project's registries serve, so this is the project's own statement of those rules.
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from pathlib import Path

import jsonschema
from pachyderm_sdk import Client

from kfp_pachyderm.lineage.openlineage import emit, run_events
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef

FACET = {
    "type": "object",
    "required": ["_producer", "_schemaURL"],
    "properties": {
        "_producer": {"type": "string", "format": "uri"},
        "_schemaURL": {"type": "string", "format": "uri"},
    },
}
DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "facets": {"type": "object", "additionalProperties": FACET},
    },
}
RUN_EVENT = {
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {
                "runId": {"type": "string", "format": "uuid"},
                "facets": {"type": "object", "additionalProperties": FACET},
            },
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
        },
        "inputs": {"type": "array", "items": DATASET},
        "outputs": {"type": "array", "items": DATASET},
    },
}
VALIDATOR = jsonschema.Draft202012Validator(RUN_EVENT, format_checker=jsonschema.FormatChecker())


def make_graph(client: Client):
    ensure_repo(client, CommitRef("raw"))
    ensure_repo(client, CommitRef("model"))
    with output_commit(
        client,
        CommitRef("raw", branch="master"),
        provenance=ProvenanceRecord(step="ingest", kfp_run_id="run-1"),
    ) as raw:
        pass
    record = ProvenanceRecord(
        inputs=[str(raw.ref)], step="train", kfp_run_id="run-1", parameters={"epochs": "2"}
    )
    with output_commit(client, CommitRef("model", branch="master"), provenance=record) as model:
        pass
    return trace(client, model.ref), raw.ref, model.ref


def test_events_follow_the_spec_and_carry_commits(client: Client):
    graph, raw, model = make_graph(client)
    events = run_events(graph, kfp_host="kfp.example.com", pachd="pachd:30650")
    assert [e["job"]["name"] for e in events] == ["ingest", "train"]
    for event in events:
        VALIDATOR.validate(event)
        assert event["job"]["namespace"] == "kfp.example.com"
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "run-1"))
        assert all(k.startswith("pachyderm_") for k in event["run"]["facets"] if k != "parent")
    train = events[1]
    assert train["run"]["runId"] == str(uuid.UUID(model.commit))
    assert [d["facets"]["version"]["datasetVersion"] for d in train["inputs"]] == [raw.commit]
    assert train["outputs"][0]["name"] == "default/model"
    assert train["run"]["facets"]["pachyderm_provenance"]["parameters"] == {"epochs": "2"}


def test_a_broken_event_fails_the_schema():
    bad = {
        "eventType": "DONE",
        "eventTime": "yesterday",
        "producer": "x",
        "schemaURL": "y",
        "run": {"runId": "nope"},
        "job": {},
    }
    problems = {e.json_path for e in VALIDATOR.iter_errors(bad)}
    assert {"$.eventType", "$.eventTime", "$.producer", "$.run.runId", "$.job"} <= problems


def test_emit_to_a_file_and_to_http(client: Client, tmp_path: Path, monkeypatch):
    graph, _, _ = make_graph(client)
    events = run_events(graph, kfp_host="kfp", pachd="local")
    (tmp_path / "ol").mkdir()
    emit(events, str(tmp_path / "ol" / "events.jsonl"))
    lines = (tmp_path / "ol" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(json.dumps(e, sort_keys=True)) for e in events
    ]

    received: list[tuple[dict, str]] = []

    class Lineage(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers.get("Authorization", "")))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lineage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "k3y")
    try:
        emit(events, f"http://127.0.0.1:{server.server_port}/api/v1/lineage")
    finally:
        server.shutdown()
    assert [body for body, _ in received] == events
    assert {auth for _, auth in received} == {"Bearer k3y"}
