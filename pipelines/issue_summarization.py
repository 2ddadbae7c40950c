"""issue_summarization: Pachyderm's seed 004 on KFP. GitHub issues are split, pre-processed,
used to train a model that writes an issue's title from its body, and the model is built into
a Seldon serving image tagged with its commit ID; every stage writes its own repo, so the image
traces back through build, train, pre_process and split to the raw data commit."""

from functools import partial

from kfp import dsl
from kfp_pachyderm.pipelines.common_tasks import (
    DEFAULT_S3,
    MLSERVER_BUILDS,
    finish_on_exit,
    needs_serving_image,
    pinned_input,
    seldon_builds,
    serve_on_kserve,
    trace_and_build_image,
)

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.checks import at_least, check_fraction
from kfp_pachyderm.kfp.cluster import use_pachyderm
from kfp_pachyderm.kfp.images import image
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec, written_by
from kfp_pachyderm.steps.component import pfs_step
from kfp_pachyderm.summarizer.report import report_titles
from kfp_pachyderm.trainer.report import report_serving
from kfp_pachyderm.trainer.step_functions import TRAINER_GPU_IMAGE


@pfs_step(output_repo="split", glob="/*", checks={"test_fraction": check_fraction})
def split(raw, out, seed: int = 42, test_fraction: float = 0.1):
    """Split each CSV of issues into train/ and test/ rows, the same way for the same seed."""
    from pathlib import Path

    from kfp_pachyderm.summarizer.stages import split_issues

    split_issues(Path(raw), Path(out), seed, test_fraction)


@pfs_step(output_repo="pre_process", glob="/*/*")
def pre_process(split, out):
    """Clean the titles and bodies of each split file."""
    from pathlib import Path

    from kfp_pachyderm.summarizer.stages import pre_process_issues

    pre_process_issues(Path(split), Path(out))


@pfs_step(
    output_repo="train",
    image=image(TRAINER_GPU_IMAGE),
    checks={"epochs": at_least(1), "batch_size": at_least(1)},
)
def train(pre_process, out, epochs: int = 2, batch_size: int = 64):
    """Fit the vocabularies on the training split and train the title writer; on a GPU with
    mixed precision and XLA, as the train component does."""
    from pathlib import Path

    from kfp_pachyderm.kfp.pod import in_kubernetes_pod
    from kfp_pachyderm.summarizer.stages import train_title_writer
    from kfp_pachyderm.trainer.device import prepare

    prepare(in_kubernetes_pod())
    train_title_writer(Path(pre_process), Path(out), epochs, batch_size)


# Every stage writes its own fixed repo, as in the seed.
SPLIT, PRE_PROCESS, MODEL = written_by(split), written_by(pre_process), written_by(train)
BUILD = seldon_builds("build")
OUTPUTS = (SPLIT, PRE_PROCESS, MODEL, BUILD, MLSERVER_BUILDS)


@dsl.pipeline(
    name="issue-summarization",
    description="Seed 004: split GitHub issues, pre-process them, train a model that writes an "
    "issue's title from its body, and build its Seldon serving image tagged with the model's "
    "commit ID; optionally serve it on KServe; retrain on every new data commit "
    "(kfp-pachyderm watch).",
)
def issue_summarization(
    data: str = f"raw_data@{DEFAULT_BRANCH}",
    source: str = "",
    seed: int = 42,
    test_fraction: float = 0.1,
    epochs: int = 10,
    batch_size: int = 64,
    serving_image: str = "",
    push_image: bool = False,
    base_image: str = "",
    registry_secret: str = "registry-credentials",
    token_secret: str = "pachd-token",
    deploy_to_kserve: bool = False,
    kserve_namespace: str = "",
    s3_endpoint: str = DEFAULT_S3,
    native_provenance: bool = False,
):
    """Train the issue summarizer on ``data``; the model commit lands on ``train``.

    Args:
        data: the raw data branch (``repo@branch``): CSVs of issues with the columns
            issue_url, issue_title, body; its head is pinned once, uncached.
        source: a CSV (or folder of CSVs) to commit to ``data`` first, as a path, http(s)
            URL or s3:// URL; empty to use what ``data`` holds.
        seed: the seed of the train/test split.
        test_fraction: the share of issues held out for testing.
        epochs: training epochs.
        batch_size: training batch size.
        serving_image: the Seldon image repository (``registry/path``, no tag); the image is
            pushed as ``<serving_image>:<model commit ID>``.
        push_image: build and push the image; otherwise only its build context is committed
            (to ``build``).
        base_image: the Seldon base image (images/seldon); empty for this version's default.
        registry_secret: a ``docker-registry`` Secret with push credentials; optional.
        token_secret: the Kubernetes Secret with the pachd token (key ``pachd-token``); optional.
        deploy_to_kserve: finally serve the model commit on KServe with MLServer (an
            InferenceService ``issue-summarizer`` whose ``storageUri`` reads the commit through
            ``s3_endpoint``) and wait until it is ready.
        kserve_namespace: where the InferenceService goes; empty for the run's namespace.
        s3_endpoint: pachd's S3 gateway as KServe's storage initializer reaches it.
        native_provenance: give split, pre_process and train's output branches branch
            provenance on their input branches, so Pachyderm itself records each output's
            inputs (``pachctl inspect commit train@<id>`` lists them, all in one commit set);
            a step whose input is not its branch's head says so in its record and relies on
            the library's record alone.
    """
    with finish_on_exit(OUTPUTS, token_secret):
        raw = pinned_input(data, token_secret, source)
        parts = use_pachyderm(
            split(
                raw=raw.outputs["commit"],
                seed=seed,
                test_fraction=test_fraction,
                native_provenance=native_provenance,
            ),
            token_secret=token_secret,
        )
        cleaned = use_pachyderm(
            pre_process(split=parts.outputs["commit"], native_provenance=native_provenance),
            token_secret=token_secret,
        )
        model = use_pachyderm(
            train(
                pre_process=cleaned.outputs["commit"],
                epochs=epochs,
                batch_size=batch_size,
                native_provenance=native_provenance,
            ),
            token_secret=token_secret,
        )
        trace_and_build_image(
            model,
            serving_image,
            push_image,
            base_image,
            registry_secret,
            token_secret,
            builds_repo=BUILD.repo,
        )
        serve_on_kserve(
            model,
            deploy_to_kserve,
            kserve_namespace,
            s3_endpoint,
            token_secret,
            model_name="issue-summarizer",
        )


SPEC = PipelineSpec(
    pipeline=issue_summarization,
    data="data",
    outputs=OUTPUTS,
    result=MODEL,
    demo_data="issues",
    report=(partial(report_serving, builds=BUILD), partial(report_titles, split=SPLIT)),
    rules=(needs_serving_image,),
)
