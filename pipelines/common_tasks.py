"""The steps the pipelines here share: the exit handler, the pinned input, and the closing
steps (trace, serving image, and serving on KServe)."""

from collections.abc import Mapping, Sequence
from typing import Any

from kfp import dsl

from kfp_pachyderm.kfp.checks import ParameterError
from kfp_pachyderm.kfp.cluster import use_pachyderm, use_registry_credentials
from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.kfp.pipeline_spec import OutputBranch, output_refs, written_by

_resolve_commit = load_component("resolve_commit")
_finish_open_commits = load_component("finish_open_commits")
_inspect_provenance = load_component("inspect_provenance")
_build_seldon_image = load_component("build_seldon_image")
_build_mlserver_image = load_component("build_mlserver_image")
_deploy_model = load_component("deploy_model")

DEFAULT_S3 = "http://pachd.pachyderm.svc.cluster.local:30600"


def seldon_builds(repo: str = "") -> OutputBranch:
    """The branch build_seldon_image commits a build context to: ``repo`` (default: the
    component's own), on the component's builds branch."""
    return written_by(
        _build_seldon_image, repo=repo, repo_input="builds_repo", branch_input="builds_branch"
    )


SELDON_BUILDS = seldon_builds()
MLSERVER_BUILDS = written_by(
    _build_mlserver_image, repo_input="builds_repo", branch_input="builds_branch"
)


def finish_on_exit(outputs: Sequence[OutputBranch], token_secret, **repos) -> dsl.ExitHandler:
    """An exit handler that finishes whatever commit of this run each branch of ``outputs``
    (a pipeline spec's, on whatever branch its step writes) still has open when the run ends;
    ``repos`` are the pipeline parameters that name output repos (``model_repo=model_repo``)."""
    branches = ",".join(output_refs(outputs, repos))
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


def trace_and_build_image(
    model: dsl.PipelineTask,
    serving_image,
    push_image,
    base_image,
    registry_secret,
    token_secret,
    **build_options: str,
) -> dsl.PipelineTask:
    """The closing steps of a training pipeline: trace the model commit, and build its Seldon
    serving context (and with ``push_image`` the image tagged with the model's commit ID);
    ``build_options`` go to build_seldon_image as they are (e.g. ``builds_repo``)."""
    model_commit = model.outputs["commit"]
    use_pachyderm(_inspect_provenance(commit=model_commit), token_secret=token_secret)
    build = _build_seldon_image(
        model=model_commit,
        image=serving_image,
        build_image=push_image,
        base_image=base_image,
        **build_options,
    )
    return use_registry_credentials(
        use_pachyderm(build, token_secret=token_secret), registry_secret
    )


def needs_serving_image(arguments: Mapping[str, Any]) -> None:
    """The rule of :func:`trace_and_build_image` for the command line: an image is pushed only
    to a repository that is named."""
    if arguments.get("push_image") and not arguments.get("serving_image"):
        raise ParameterError(
            "parameter push_image=true needs serving_image (a repository such as "
            "registry.example.com/ml/model) to push to"
        )


def serve_on_kserve(
    model: dsl.PipelineTask,
    deploy_to_kserve,
    kserve_namespace,
    s3_endpoint,
    token_secret,
    **build_options: str,
) -> None:
    """When ``deploy_to_kserve`` is true, the last steps: commit the model's MLServer model
    directory (no image) and serve that commit on KServe through the S3 gateway, waiting until
    the InferenceService is ready. ``build_options`` go to build_mlserver_image as they are."""
    with dsl.If(deploy_to_kserve == True, name="deploy-to-kserve"):  # noqa: E712 (a channel)
        build = use_pachyderm(
            _build_mlserver_image(
                model=model.outputs["commit"],
                build_image=False,
                namespace=kserve_namespace,
                **build_options,
            ),
            token_secret=token_secret,
        )
        use_pachyderm(
            _deploy_model(
                manifests=build.outputs["storage_inference_service"],
                s3_endpoint=s3_endpoint,
            ),
            token_secret=token_secret,
        )
