"""inspect_provenance: the full upstream graph of a commit, as JSON, Markdown and HTML."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def inspect_provenance(
    graph_json: dsl.Output[dsl.Artifact],
    report_markdown: dsl.Output[dsl.Markdown],
    report_html: dsl.Output[dsl.HTML],
    commit: dsl.Input[dsl.Artifact] = None,
    commit_ref: str = "",
    openlineage_target: str = "",
    kfp_host: str = "",
) -> str:
    """Trace every commit a commit came from; return the root node ID.

    The commit is the ``commit`` artifact of an earlier step or a ``commit_ref`` such as
    ``model@<commit id>``. Writes the graph as JSON, a Markdown report and an HTML page with the
    graph drawn, which the KFP UI renders. With ``openlineage_target`` (a file path or an
    http(s) lineage endpoint) it also emits OpenLineage RunEvents, job namespace ``kfp_host``.
    """
    from kfp_pachyderm.bodies.inspect_provenance import InspectProvenanceInputs, run

    return run(InspectProvenanceInputs.of(locals()))
