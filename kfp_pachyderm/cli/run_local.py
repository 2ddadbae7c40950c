"""``kfp-pachyderm run PIPELINE --local``: a pipeline end to end with no cluster.

Starts the embedded local Pachyderm server and its S3 gateway, seeds the demo data (the digits
data set in the mnist.npz layout, made offline), runs the pipeline with ``kfp.local`` (each
step a subprocess, local caching on), and ends with the provenance trace of the result and,
for the MNIST pipelines, predictions from the trained model.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import uuid
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
}
OUTPUT_PARAMS = ("model_repo", "output_repo")
LOCAL_ARGUMENTS = {"runner": "local", "workers": 1, "token_secret": ""}


def _seed(client, ref: CommitRef, kind: str, scratch: Path) -> None:
    source = scratch / "demo-input"
    if kind == "mnist":
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


def _report_serving(client, model: CommitRef) -> None:
    from kfp_pachyderm.seldon.build import DEFAULT_BUILDS_REPO, IMAGE_RECORD_KEY

    record = read_provenance(inspect_commit(client, model))
    image = record.extra.get(IMAGE_RECORD_KEY) if record else None
    if image:
        print(f"serving image: {image}")
        return
    builds = inspect_commit(client, CommitRef(DEFAULT_BUILDS_REPO, branch="master"))
    print(
        f"Seldon build context: {DEFAULT_BUILDS_REPO}@{builds.commit.id} (no registry given; "
        "--param serving_image=<registry>/<repo> --param push_image=true pushes the image)"
    )


def run_local(name: str, data_dir: Path, overrides: dict[str, str]) -> CommitRef:
    """Run pipeline ``name`` locally; return the commit it produced."""
    from kfp import local

    from kfp_pachyderm.pipelines import PIPELINES

    if name not in PIPELINES:
        raise KfpPachydermError(f"unknown pipeline {name!r}: one of {', '.join(PIPELINES)}")
    pipeline = PIPELINES[name]
    input_param, input_ref, kind = DEMO_INPUTS[name]
    data_dir = Path(data_dir)
    with (
        LocalPachyderm(data_dir / "pfs", s3_port=0) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"local Pachyderm server (development default, not pachd) at {server.address}")
        print(f"S3 gateway at {server.s3_endpoint}")
        os.environ["PACHD_ADDRESS"] = server.address
        os.environ[RUN_ID_ENV] = f"local-{uuid.uuid4().hex[:12]}"
        client = connect(server.address)
        source = CommitRef.parse(overrides.get(input_param, input_ref))
        _seed(client, source, kind, Path(tmp))
        arguments = _arguments(pipeline, overrides, server)
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(data_dir / "kfp"),
            enable_caching=True,
        )
        pipeline(**arguments)

        output_param = next(
            p
            for p in OUTPUT_PARAMS
            if p in arguments or p in inspect.signature(pipeline.pipeline_func).parameters
        )
        output_repo = arguments.get(
            output_param,
            inspect.signature(pipeline.pipeline_func).parameters[output_param].default,
        )
        try:
            info = inspect_commit(client, CommitRef(output_repo, branch="master"), wait=True)
        except NotFoundError as err:
            raise KfpPachydermError(f"the pipeline produced no commit in {output_repo}") from err
        result = CommitRef(output_repo, branch="master", commit=info.commit.id)
        print(f"\nresult: {result.uri}")
        print("provenance:")
        print(trace(client, result).to_text())
        if name == "mnist_tfjob":
            _report_serving(client, result)
        if kind == "mnist" and client.pfs.path_exists(result.with_path("/model").pfs_file()):
            _predict(client, result, source.at(inspect_commit(client, source).commit.id), Path(tmp))
        return result
