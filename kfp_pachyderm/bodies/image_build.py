"""What the two image-building components share: their build options, declared once, and the
report of a build. Kept apart from the other bodies so that those (the exit handler among
them) do not load the OCI client.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.checks import (
    check_image_reference,
    check_image_repository_name,
    check_kubernetes_object_name,
)
from kfp_pachyderm.kfp.contract import CommitOutput, commit_input, optional, parameter
from kfp_pachyderm.modelimage.build import BuildOptions, ModelImageBuild
from kfp_pachyderm.pfs.refs import CommitRef


@dataclass(frozen=True, kw_only=True)
class ImageBuildInputs(CommitOutput):
    """The options of both serving-image builds (Seldon Core 1 and MLServer): the model
    commit, the image to push, the base it goes onto, where the build context is committed,
    and how the registry is reached."""

    model: CommitRef = commit_input("the model commit (a SavedModel at `model_path`)")
    image: str | None = optional(
        "the repository to push to, e.g. `registry.example.com/ml/mnist` (no tag: the tag is the "
        "model commit ID); needed unless `build_image=False`",
        check=check_image_repository_name,
    )
    model_path: str = parameter(
        "the SavedModel's path in the model commit, unless the reference names one",
        "/model",
    )
    base_image: str | None = optional(
        "the serving base image; not set: this version's `kfp-pachyderm-seldon` or "
        "`kfp-pachyderm-mlserver`",
        check=check_image_reference,
    )
    builds_branch: str = parameter("the branch of `builds_repo`", DEFAULT_BRANCH)
    build_image: bool = parameter(
        "False: commit the context and write the manifests only (serve from the S3 gateway)", True
    )
    docker_config: str | None = optional(
        "a docker `config.json` (or a directory holding `config.json` or "
        "`.dockerconfigjson`); not set: read `$DOCKER_CONFIG`, then `~/.docker/config.json`",
    )
    plain_http: bool = parameter(
        "talk plain HTTP to the registries (a local `docker-registry`); "
        "`KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES` lists such hosts too",
        False,
    )
    namespace: str | None = optional(
        "the manifests' namespace; not set leaves it to `deploy_model`",
        check=check_kubernetes_object_name,
    )

    def model_to_build(self, component: str) -> CommitRef:
        """The model commit at ``model_path`` (unless its reference names a path), once
        ``image`` is known to be set where ``build_image`` asks for a push."""
        if self.build_image and not self.image:
            raise UsageError(
                f"{component} needs image (a repository such as registry.example.com/ml/mnist) "
                "unless build_image is false"
            )
        model = self.model
        return model if model.path is not None else model.with_path(self.model_path)

    def build_options(self, builds_repo: str) -> BuildOptions:
        """These options as the image build takes them, the context going to
        ``builds_repo`` (the flavour's)."""
        return BuildOptions(
            base_image=self.base_image,
            builds=CommitRef(builds_repo, branch=self.builds_branch),
            record=self.record(),
            docker_config=self.docker_config,
            plain_http=True if self.plain_http else None,
            push=self.build_image,
        )


def report_image_build(build_commit: dsl.Artifact, result: ModelImageBuild) -> str:
    """Describe the build-context commit in the ``commit`` output, print what the build
    reused and pushed, and return the image reference with its digest ("" when none)."""
    image = str(result.image) if result.image else ""
    describe_commit(
        build_commit,
        result.build_commit,
        model_commit=result.model.commit,
        image=image,
        base_image=str(result.base),
        reused=result.reused_context,
    )
    print(f"build context {result.build_commit}{' (reused)' if result.reused_context else ''}")
    if result.push is not None:
        push = result.push
        print(
            f"pushed {image}: {len(push.uploaded)} blobs uploaded, {len(push.mounted)} mounted, "
            f"{len(push.copied)} copied, {len(push.present)} already there, "
            f"in {push.seconds:.1f} s"
        )
    return image
