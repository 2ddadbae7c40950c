"""finish_open_commits: the exit handler that leaves no commit of a failed run open."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def finish_open_commits(branches: str, kfp_run_id: str = "") -> int:
    """For each ``repo@branch`` in the comma-separated ``branches``, finish the head commit if
    it is still open and was opened by this KFP run (``kfp_run_id``, by default the run this
    step belongs to), recording that the run ended before the
    step could (a pod killed by OOM or a lost node runs no cleanup of its own). Return how many
    commits were finished.
    """
    from kfp_pachyderm.bodies.finish_open_commits import FinishOpenCommitsInputs, run

    return run(FinishOpenCommitsInputs.of(locals()))
