"""The ``inspect_provenance`` component's body: trace a commit and write the reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kfp import dsl

from kfp_pachyderm.kfp.contract import (
    ComponentInputs,
    Contract,
    commit_input,
    optional,
    output,
)
from kfp_pachyderm.lineage.openlineage import emit, run_events
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True, kw_only=True)
class InspectProvenanceInputs(ComponentInputs):
    """The parameters of the ``inspect_provenance`` component."""

    graph_json: dsl.Artifact = output("the provenance graph as JSON")
    report_markdown: dsl.Markdown = output("the graph as a Markdown report", dsl.Markdown)
    report_html: dsl.HTML = output("the graph drawn, as an HTML page", dsl.HTML)
    commit: CommitRef | str = commit_input(
        "the commit to trace: an earlier step's `commit` output, a reference such as "
        "`model@<commit id>` (a branch is resolved once), or an image a build step pushed",
        or_image=True,
    )
    openlineage_target: str | None = optional(
        "also emit OpenLineage RunEvents: a JSON Lines file path, or an http(s) endpoint such as "
        "`http://marquez:5000/api/v1/lineage` (`OPENLINEAGE_API_KEY` is sent as a bearer token)",
    )
    kfp_host: str | None = optional("the OpenLineage job namespace: your KFP host; not set: `kfp`")


def run(inputs: InspectProvenanceInputs) -> str:
    """Trace the commit, write the three reports and, with ``openlineage_target``, emit
    OpenLineage RunEvents there; return the root commit."""
    client = connect()
    graph = trace(client, inputs.commit)
    Path(inputs.graph_json.path).write_text(json.dumps(graph.to_json(), indent=2))
    Path(inputs.report_markdown.path).write_text(graph.to_markdown())
    Path(inputs.report_html.path).write_text(graph.to_html())
    for artifact in (inputs.graph_json, inputs.report_markdown, inputs.report_html):
        artifact.metadata.update({"root": graph.root, "commits": len(graph.nodes)})
    print(graph.to_text())
    if inputs.openlineage_target:
        events = run_events(graph, inputs.kfp_host or "kfp", client.address)
        emit(events, inputs.openlineage_target)
        print(f"sent {len(events)} OpenLineage events to {inputs.openlineage_target}")
    return graph.root


CONTRACT = Contract(
    "inspect_provenance",
    InspectProvenanceInputs,
    run,
    """Trace every commit a commit came from; return the root node ID.

    The commit is the ``commit`` artifact of an earlier step or a ``commit_ref`` such as
    ``model@<commit id>``. Writes the graph as JSON, a Markdown report and an HTML page with the
    graph drawn, which the KFP UI renders. With ``openlineage_target`` (a file path or an
    http(s) lineage endpoint) it also emits OpenLineage RunEvents, job namespace ``kfp_host``.
    """,
)
