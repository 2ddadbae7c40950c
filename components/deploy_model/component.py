"""deploy_model: apply serving manifests and wait until the model commit serves."""

from kfp import dsl

from kfp_pachyderm.kfp.images import runtime_image


@dsl.component(base_image=runtime_image(), install_kfp_package=False)
def deploy_model(
    manifests: dsl.Input[dsl.Artifact],
    deployment: dsl.Output[dsl.Artifact],
    namespace: str = "",
    s3_endpoint: str = "",
    timeout_seconds: int = 900,
) -> str:
    """Apply ``manifests`` (an output of build_mlserver_image: a KServe InferenceService with
    what it needs, or a Seldon Core 2 Model) with the Kubernetes API, and wait until the
    service is ready; return its URL ("" for a Seldon Core 2 Model). A rerun adopts the
    service it already made; a new model commit replaces the old one under the same name; a
    failure quotes the service's own condition. A model read through the S3 gateway gets its
    storage Secret made here from the pachd token, at ``s3_endpoint``; the token is never
    written to an artifact or a log. ``namespace`` empty: the manifests' own, else this
    pod's.
    """
    from kfp_pachyderm.bodies.deploy_model import DeployModelInputs, run

    return run(DeployModelInputs.of(locals()))
