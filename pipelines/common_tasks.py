"""The steps every pipeline here opens with: the exit handler and the pinned input."""

from kfp import dsl

from kfp_pachyderm.kfp.cluster import use_pachyderm
from kfp_pachyderm.kfp.compile import load_component

_resolve_commit = load_component("resolve_commit")
_finish_open_commits = load_component("finish_open_commits")


def finish_on_exit(token_secret, *output_repos) -> dsl.ExitHandler:
    """An exit handler that finishes whatever commit of this run each ``<repo>@master`` of
    ``output_repos`` still has open when the run ends."""
    branches = ",".join(f"{repo}@master" for repo in output_repos)
    cleanup = use_pachyderm(
        _finish_open_commits(branches=branches).set_caching_options(False),
        token_secret=token_secret,
    )
    return dsl.ExitHandler(cleanup, name="finish-open-commits")


def pinned_input(ref, token_secret, commit_source="") -> dsl.PipelineTask:
    """The uncached first step: ``ref``'s branch head pinned to a commit (after committing
    ``commit_source`` to it, when given)."""
    return use_pachyderm(
        _resolve_commit(ref=ref, commit_source=commit_source), token_secret=token_secret
    ).set_caching_options(False)
