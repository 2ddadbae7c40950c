"""The ``inspect_provenance`` component's body: trace a commit and write the reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kfp import dsl

from kfp_pachyderm.bodies.common import ComponentInputs
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.artifacts import commit_of
from kfp_pachyderm.lineage.openlineage import emit, run_events
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.pfs.connection import connect


@dataclass(frozen=True)
class InspectProvenanceInputs(ComponentInputs):
    """The parameters of the ``inspect_provenance`` component."""

    graph_json: dsl.Artifact
    report_markdown: dsl.Markdown
    report_html: dsl.HTML
    commit: dsl.Artifact | None
    commit_ref: str
    openlineage_target: str
    kfp_host: str


def run(inputs: InspectProvenanceInputs) -> str:
    """Trace the commit, write the three reports and, with ``openlineage_target``, emit
    OpenLineage RunEvents there; return the root commit."""
    if (inputs.commit is None) == (not inputs.commit_ref):
        raise UsageError(
            "inspect_provenance needs exactly one of the commit artifact or commit_ref "
            f"(got commit={'set' if inputs.commit is not None else 'none'}, "
            f"commit_ref={inputs.commit_ref!r})"
        )
    ref = commit_of(inputs.commit) if inputs.commit is not None else inputs.commit_ref
    client = connect()
    graph = trace(client, ref)
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
