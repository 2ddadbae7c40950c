"""OpenLineage RunEvents for a provenance graph, so lineage tools (Marquez, DataHub, ...) see
the same commits, steps and runs as ``inspect_provenance``.

One COMPLETE (or FAIL) event per commit that a step of this library wrote:

- job: namespace = the KFP host, name = the step;
- run: ``runId`` = the commit's global ID as a UUID (commit IDs are uuid4s), with a ``parent``
  facet naming the KFP run and a ``pachyderm_provenance`` facet with what the step recorded;
- inputs: the upstream commits, outputs: the commit itself, each a dataset named
  ``project/repo`` in namespace ``pachyderm://<pachd>``, with a ``version`` facet holding the
  commit ID and a ``pachyderm_commit`` facet.

Events go to a JSON Lines file or are POSTed to an HTTP endpoint (``/api/v1/lineage``).
``OPENLINEAGE_API_KEY``, if set, is sent as a bearer token and never logged.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

import requests

from kfp_pachyderm import __version__
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.lineage.trace import CommitNode, Lineage

PRODUCER = f"https://pypi.org/project/kfp-pachyderm/{__version__}"
SPEC = "https://openlineage.io/spec"
RUN_EVENT_SCHEMA = f"{SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent"
PARENT_FACET_SCHEMA = f"{SPEC}/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet"
VERSION_FACET_SCHEMA = (
    f"{SPEC}/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
)
CUSTOM_FACET_SCHEMA = f"https://github.com/kfp-pachyderm/kfp-pachyderm/schemas/{__version__}"
API_KEY_ENV = "OPENLINEAGE_API_KEY"
HTTP_TIMEOUT_S = 30


def _facet(schema: str, **fields) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": schema, **fields}


def as_uuid(value: str) -> str:
    """A UUID for an ID: itself if it is one (commit IDs are), else a stable uuid5 of it."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, value))


def _dataset(node: CommitNode, namespace: str) -> dict:
    return {
        "namespace": namespace,
        "name": f"{node.project}/{node.repo}",
        "facets": {
            "version": _facet(VERSION_FACET_SCHEMA, datasetVersion=node.commit),
            "pachyderm_commit": _facet(
                CUSTOM_FACET_SCHEMA,
                commit=node.commit,
                branch=node.branch,
                sizeBytes=node.size_bytes,
                finished=node.finished,
            ),
        },
    }


def run_events(
    graph: Lineage, kfp_host: str, pachd: str, pipeline: str = "", kfp_run_id: str = ""
) -> list[dict]:
    """The RunEvents of every step in ``graph``, upstream first."""
    namespace = f"pachyderm://{pachd}"
    events = []
    for node in reversed(list(graph.nodes.values())):
        record = node.record
        if not record or not record.get("step"):
            continue
        run_id = record.get("kfp_run_id") or kfp_run_id
        run_facets = {
            "pachyderm_provenance": _facet(
                CUSTOM_FACET_SCHEMA,
                **{k: v for k, v in record.items() if v not in ("", [], {})},
            )
        }
        if run_id:
            run_facets["parent"] = _facet(
                PARENT_FACET_SCHEMA,
                run={"runId": as_uuid(run_id)},
                job={
                    "namespace": kfp_host,
                    "name": record.get("kfp_pipeline") or pipeline or "kfp",
                },
            )
        events.append(
            {
                "eventType": "FAIL" if node.error else "COMPLETE",
                "eventTime": node.finished or node.started,
                "producer": PRODUCER,
                "schemaURL": RUN_EVENT_SCHEMA,
                "run": {"runId": as_uuid(node.commit), "facets": run_facets},
                "job": {"namespace": kfp_host, "name": record["step"], "facets": {}},
                "inputs": [_dataset(graph.nodes[up], namespace) for up in node.upstream],
                "outputs": [_dataset(node, namespace)],
            }
        )
    return events


def emit(events: list[dict], target: str) -> None:
    """Append ``events`` to a JSON Lines file (a path or file:// URL) or POST each to an
    http(s) endpoint."""
    scheme = urlparse(target).scheme
    if scheme in ("http", "https"):
        headers = {"Content-Type": "application/json"}
        if os.environ.get(API_KEY_ENV):
            headers["Authorization"] = f"Bearer {os.environ[API_KEY_ENV]}"
        for event in events:
            try:
                response = requests.post(
                    target, json=event, headers=headers, timeout=HTTP_TIMEOUT_S
                )
            except requests.RequestException as err:
                raise UsageError(f"cannot send OpenLineage events to {target}: {err}") from err
            if response.status_code >= 300:
                raise UsageError(
                    f"OpenLineage endpoint {target} answered HTTP {response.status_code}"
                )
        return
    if scheme not in ("", "file"):
        raise UsageError(
            f"unsupported OpenLineage target {target!r}: use a file path, file://, http:// or "
            "https://"
        )
    path = Path(target.removeprefix("file://"))
    if not path.parent.is_dir():
        raise UsageError(
            f"cannot write OpenLineage events to {path}: no directory {path.parent} (create it "
            "first; a typo in the target should not create directories)"
        )
    with open(path, "a") as out:
        for event in events:
            out.write(json.dumps(event, sort_keys=True) + "\n")
