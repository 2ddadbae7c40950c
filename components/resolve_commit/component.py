"""resolve_commit: pin a branch to its head commit once, optionally committing data first."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def resolve_commit(
    ref: str,
    commit: dsl.Output[dsl.Artifact],
    commit_source: str = "",
    kfp_run_id: str = "",
    kfp_task_id: str = "",
) -> str:
    """Return the commit ID ``ref`` (``repo@branch``) points at now, as a string and a commit
    artifact; a ``ref`` that already names a commit is checked and passed through (that is how
    ``kfp-pachyderm watch`` starts runs on exact commits).

    Run it uncached (``set_caching_options(False)``) as a pipeline's first step: every later
    step then receives a commit ID, so KFP caching is correct by construction. With
    ``commit_source`` (a path, URL or commit reference) the data is committed to the branch
    first, as commit_data does (idempotently).
    """
    from kfp_pachyderm.bodies.resolve_commit import ResolveCommitInputs, run

    return run(ResolveCommitInputs.of(locals()))
