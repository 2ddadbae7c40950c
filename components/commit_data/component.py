"""commit_data: put a local path, URL, S3 prefix or commit into a finished Pachyderm commit."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def commit_data(
    source: str,
    repo: str,
    commit: dsl.Output[dsl.Artifact],
    branch: str = "master",
    dest_path: str = "/",
    description: str = "",
    create_repo: bool = True,
    mirror: bool = False,
    project: str = "default",
    kfp_run_id: str = "",
    kfp_task_id: str = "",
) -> str:
    """Commit ``source`` at ``dest_path`` on ``repo@branch``; return the commit ID.

    ``source`` is a local path, an http(s):// or s3:// URL, or a commit reference
    (repo@<commit id>[:/path]). Each file of the source is added or replaced under
    ``dest_path`` and nothing else is removed; with ``mirror``, ``dest_path`` holds exactly the
    source afterwards. If the branch head already holds this content at ``dest_path``, that
    commit is returned and nothing is written.
    """
    from kfp_pachyderm.bodies.commit_data import CommitDataInputs, run

    return run(CommitDataInputs.of(locals()))
