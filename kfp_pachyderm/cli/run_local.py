"""``kfp-pachyderm run PIPELINE --local``: a pipeline end to end with no cluster.

Starts the embedded local Pachyderm server and its S3 gateway, seeds the demo data (the digits
data set in the mnist.npz layout, or CSVs of issues in the seed's layout, made offline), runs
the pipeline with ``kfp.local`` (each step a subprocess, local caching on), and ends with the
provenance trace of the result and, for the MNIST pipelines, predictions from the trained
model; for issue_summarization, the titles the model writes for held-out issues next to their
true titles.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kfp_pachyderm.errors import KfpPachydermError, NotFoundError
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import inspect_commit
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import RUN_ID_ENV, read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import read_tree

# What each pipeline reads (seeded here) and writes (traced at the end).
DEMO_INPUTS = {
    "mnist_tfjob": ("data", "mnist@master", "mnist"),
    "mnist_gpu": ("data", "mnist@master", "mnist"),
    "tf_distributed_sample": ("input_data", "sample_input@master", "text"),
    "gpu_check": ("input_data", "images@master", "mnist"),
    "issue_summarization": ("data", "raw_data@master", "issues"),
}
OUTPUT_PARAMS = ("model_repo", "output_repo")
FIXED_OUTPUTS = {"issue_summarization": "train"}
LOCAL_ARGUMENTS = {"runner": "local", "workers": 1, "token_secret": ""}


def _seed(client, ref: CommitRef, kind: str, scratch: Path) -> None:
    source = scratch / "demo-input"
    if kind == "issues":
        from kfp_pachyderm.summarizer.stages import write_demo_shards

        write_demo_shards(source)
    elif kind == "mnist":
        from kfp_pachyderm.trainer.data import write_mnist_npz

        write_mnist_npz(source / "mnist.npz")
    else:
        source.mkdir(parents=True, exist_ok=True)
        (source / "blah.txt").write_text("the seed's sample input: any commit triggers the job\n")
    result = commit_data(client, str(source), ref)
    print(f"demo data {'already in' if result.reused else 'committed to'} {result.ref}")


def _arguments(pipeline, overrides: dict[str, str], server: LocalPachyderm) -> dict:
    accepted = inspect.signature(pipeline.pipeline_func).parameters
    arguments = {**LOCAL_ARGUMENTS, "s3_endpoint": server.s3_endpoint}
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise KfpPachydermError(
            f"unknown parameter {unknown[0]!r} for this pipeline: one of {', '.join(accepted)}"
        )
    arguments.update(overrides)
    return {k: _typed(accepted[k], v) for k, v in arguments.items() if k in accepted}


def _typed(parameter: inspect.Parameter, value):
    kind = type(parameter.default) if parameter.default is not inspect.Parameter.empty else str
    if isinstance(value, str) and kind is int:
        return int(value)
    return value


def _predict(client, model: CommitRef, data: CommitRef, scratch: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up INFO lines
    import numpy as np
    import tensorflow as tf

    from kfp_pachyderm.trainer.data import load_mnist_npz

    read_tree(client, model.with_path("/model"), scratch / "model")
    read_tree(client, data, scratch / "data")
    arrays = load_mnist_npz(next((scratch / "data").rglob("*.npz")))
    served = tf.saved_model.load(str(scratch / "model"))
    images, labels = arrays["x_test"][:10], arrays["y_test"][:10]
    predicted = np.argmax(served.serve(tf.constant(images, tf.float32)).numpy(), axis=1)
    print(f"prediction from {model}: {predicted.tolist()}")
    print(f"true labels:{' ' * (len(str(model)) + 6)}{labels.tolist()}")


def _report_serving(client, model: CommitRef, builds_repo: str = "") -> None:
    from kfp_pachyderm.seldon.build import DEFAULT_BUILDS_REPO, IMAGE_RECORD_KEY

    builds_repo = builds_repo or DEFAULT_BUILDS_REPO
    record = read_provenance(inspect_commit(client, model))
    image = record.extra.get(IMAGE_RECORD_KEY) if record else None
    if image:
        print(f"serving image: {image}")
        return
    builds = inspect_commit(client, CommitRef(builds_repo, branch="master"))
    print(
        f"Seldon build context: {builds_repo}@{builds.commit.id} (no registry given; "
        "--param serving_image=<registry>/<repo> --param push_image=true pushes the image)"
    )


def _output_repo(name: str, pipeline, arguments: dict) -> str:
    if name in FIXED_OUTPUTS:
        return FIXED_OUTPUTS[name]
    parameters = inspect.signature(pipeline.pipeline_func).parameters
    output_param = next(p for p in OUTPUT_PARAMS if p in arguments or p in parameters)
    return arguments.get(output_param, parameters[output_param].default)


def _summarize(client, model: CommitRef, scratch: Path, count: int = 5) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kfp_pachyderm.summarizer.data import read_issues
    from kfp_pachyderm.summarizer.model import summarize

    split = CommitRef("split", branch="master")
    read_tree(client, model.with_path("/model"), scratch / "model")
    read_tree(client, split.with_path("/test"), scratch / "test")
    held_out = [
        row for path in sorted((scratch / "test").rglob("*.csv")) for row in read_issues(path)
    ]
    held_out = held_out[:count]
    titles = summarize(scratch / "model", [body for _, _, body in held_out])
    print(f"titles written by {model} for {len(held_out)} held-out issues:")
    for (url, true_title, _), written in zip(held_out, titles, strict=True):
        print(f"  {url}\n    written: {written!r}\n    true:    {true_title!r}")


def _check_issues_source(source: str) -> None:
    """A local CSV (or folder of CSVs) of issues is checked before anything starts; a URL is
    checked by the split step, file by file, once committed."""
    if "://" in source:
        return
    from kfp_pachyderm.summarizer.data import check_issues_csv

    path = Path(source).expanduser()
    files = sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise KfpPachydermError(f"source {source!r} holds no .csv file of issues")
    for file in files:
        check_issues_csv(file)


@contextmanager
def local_session(data_dir: Path, port: int = 0) -> Iterator[LocalPachyderm]:
    """The local Pachyderm server (and S3 gateway) on ``data_dir``, with ``kfp.local`` set up
    to run pipelines against it, for as long as the block runs."""
    from kfp import local

    data_dir = Path(data_dir)
    with LocalPachyderm(data_dir / "pfs", port=port, s3_port=0) as server:
        print(f"local Pachyderm server (development default, not pachd) at {server.address}")
        print(f"S3 gateway at {server.s3_endpoint}")
        os.environ["PACHD_ADDRESS"] = server.address
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(data_dir / "kfp"),
            enable_caching=True,
        )
        yield server


def pipeline_named(name: str):
    """The pipeline ``name``, or a one-line error listing the valid names."""
    from kfp_pachyderm.pipelines import PIPELINES

    if name not in PIPELINES:
        raise KfpPachydermError(f"unknown pipeline {name!r}: one of {', '.join(PIPELINES)}")
    return PIPELINES[name]


def run_once(name: str, server: LocalPachyderm, overrides: dict[str, str]) -> tuple[str, CommitRef]:
    """One run of pipeline ``name`` in a :func:`local_session`; return its run ID and the
    commit it produced (after printing that commit's provenance)."""
    pipeline = pipeline_named(name)
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    os.environ[RUN_ID_ENV] = run_id
    arguments = _arguments(pipeline, overrides, server)
    pipeline(**arguments)
    client = connect(server.address)
    output_repo = _output_repo(name, pipeline, arguments)
    try:
        info = inspect_commit(client, CommitRef(output_repo, branch="master"), wait=True)
    except NotFoundError as err:
        raise KfpPachydermError(f"the pipeline produced no commit in {output_repo}") from err
    result = CommitRef(output_repo, branch="master", commit=info.commit.id)
    print(f"\nresult: {result.uri}")
    print("provenance:")
    print(trace(client, result).to_text())
    return run_id, result


def run_local(name: str, data_dir: Path, overrides: dict[str, str]) -> CommitRef:
    """Run pipeline ``name`` locally on its demo data (or ``source``); return the commit it
    produced."""
    pipeline_named(name)
    input_param, input_ref, kind = DEMO_INPUTS[name]
    if kind == "issues" and overrides.get("source"):
        _check_issues_source(overrides["source"])
    with local_session(data_dir) as server, tempfile.TemporaryDirectory() as tmp:
        client = connect(server.address)
        source = CommitRef.parse(overrides.get(input_param, input_ref))
        if not overrides.get("source"):
            _seed(client, source, kind, Path(tmp))
        _, result = run_once(name, server, overrides)
        if name == "mnist_tfjob":
            _report_serving(client, result)
        if kind == "issues":
            _report_serving(client, result, builds_repo="build")
            _summarize(client, result, Path(tmp))
        if kind == "mnist" and client.pfs.path_exists(result.with_path("/model").pfs_file()):
            _predict(client, result, source.at(inspect_commit(client, source).commit.id), Path(tmp))
        return result
