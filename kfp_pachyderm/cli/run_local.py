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
import re
import signal
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kfp_pachyderm.cli.step_log import plain, step_lines
from kfp_pachyderm.errors import KfpPachydermError, NotFoundError, RunCancelled, RunFailed
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import inspect_commit
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import LOCAL_RUN_PID_ENV, RUN_ID_ENV, read_provenance
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


def _local_arguments(pipeline, arguments: dict, server: LocalPachyderm) -> dict:
    """The validated ``arguments`` over the local defaults (local runner, one worker, no token
    Secret, this server's S3 gateway), for the parameters ``pipeline`` takes."""
    accepted = inspect.signature(pipeline.pipeline_func).parameters
    merged = {**LOCAL_ARGUMENTS, "s3_endpoint": server.s3_endpoint, **arguments}
    return {key: value for key, value in merged.items() if key in accepted}


def _predict(client, model: CommitRef, data: CommitRef, scratch: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up INFO lines
    import numpy as np
    import tensorflow as tf

    from kfp_pachyderm.trainer.data import load_mnist_npz

    read_tree(client, model.with_path("/model"), scratch / "model", digest=False)
    read_tree(client, data, scratch / "data", digest=False)
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
    read_tree(client, model.with_path("/model"), scratch / "model", digest=False)
    read_tree(client, split.with_path("/test"), scratch / "test", digest=False)
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
def _environment(**values: str) -> Iterator[None]:
    """``values`` in this process's environment (which the steps inherit) while the block
    runs; what was there before comes back afterwards."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def local_session(data_dir: Path, port: int = 0) -> Iterator[LocalPachyderm]:
    """The local Pachyderm server (and S3 gateway) on ``data_dir``, with ``kfp.local`` set up
    to run pipelines against it, for as long as the block runs."""
    from kfp import local

    data_dir = Path(data_dir)
    with (
        LocalPachyderm(data_dir / "pfs", port=port, s3_port=0) as server,
        _environment(PACHD_ADDRESS=server.address),
    ):
        print(f"local Pachyderm server (development default, not pachd) at {server.address}")
        print(f"S3 gateway at {server.s3_endpoint}")
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


@contextmanager
def _cancellable(client, run_id: str) -> Iterator[None]:
    """While the run is in progress, SIGINT and SIGTERM stop it; either way, every commit the
    run left open is finished with an error, so nothing blocks the next run."""

    def stop(signum: int, frame: object) -> None:
        raise RunCancelled(f"run {run_id} cancelled by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except BaseException as err:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        finished = finish_run_commits(client, run_id)
        if finished:
            print(f"finished {len(finished)} commit(s) the run left open: {', '.join(finished)}")
        if isinstance(err, KeyboardInterrupt):
            raise RunCancelled(f"run {run_id} cancelled by SIGINT") from None
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def finish_run_commits(client, run_id: str) -> list[str]:
    """Finish, with an error, the head of every repo's ``master`` that run ``run_id`` opened
    and left open; return them."""
    from kfp_pachyderm.pfs.commits import finish_abandoned

    return [
        f"{branch.repo}@master"
        for branch in _master_branches(client)
        if finish_abandoned(client, branch, run_id)
    ]


def _master_branches(client) -> Iterator[CommitRef]:
    """The ``master`` branch of every repo on the server: where a local run's steps write."""
    for info in client.pfs.list_repo():
        yield CommitRef(info.repo.name, branch="master", project=info.repo.project.name)


def _failure_of(client, run_id: str) -> str:
    """The error of the step of run ``run_id`` that failed, from the commit it finished."""
    for branch in _master_branches(client):
        try:
            head = inspect_commit(client, branch)
        except NotFoundError:
            continue
        record = read_provenance(head)
        if head.error and record is not None and record.kfp_run_id == run_id:
            return f"step {record.step or branch.repo} failed: {head.error}"
    return ""


_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception|Failed)): (.+)$")


def _failure_in_log(log_path: Path) -> str:
    """The last exception a step raised, from the run's log (for a step that failed before
    it opened a commit)."""
    if not log_path.is_file():
        return ""
    found = ""
    for line in log_path.read_text(errors="replace").splitlines():
        if match := _EXCEPTION_LINE.match(plain(line)):
            found = f"{match.group(1)}: {match.group(2)}"
    return found


def run_once(
    name: str, server: LocalPachyderm, arguments: dict, verbose: bool = False
) -> tuple[str, CommitRef]:
    """One run of pipeline ``name`` in a :func:`local_session`; return its run ID and the
    commit it produced (after printing that commit's provenance). SIGINT or SIGTERM cancels
    the run and finishes its open commits (:class:`RunCancelled`)."""
    pipeline = pipeline_named(name)
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    client = connect(server.address)
    log_path = Path(server.data_dir).parent / "logs" / f"{run_id}.log"
    print(f"run {run_id} of {name}")
    steps_see = {RUN_ID_ENV: run_id, LOCAL_RUN_PID_ENV: str(os.getpid())}
    try:
        with _environment(**steps_see), _cancellable(client, run_id), step_lines(log_path, verbose):
            pipeline(**_local_arguments(pipeline, arguments, server))
    except RuntimeError as err:  # kfp.local's wrapper; the step's own error is on its commit
        cause = _failure_of(client, run_id) or _failure_in_log(log_path) or plain(str(err))
        raise RunFailed(f"{cause} (full log: {log_path})") from None
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


def _input_branch(client, name: str, arguments: dict, scratch: Path) -> CommitRef:
    """The branch the run reads. One the user named is used as it is (its repo must exist);
    the demo's own default is seeded with the demo data only while it is missing or empty."""
    input_param, default_ref, kind = DEMO_INPUTS[name]
    if input_param in arguments:
        named = CommitRef.parse(arguments[input_param])
        if not client.pfs.repo_exists(named.pfs_repo()):
            raise KfpPachydermError(
                f"input repo {named.repo!r} ({input_param}={arguments[input_param]}) does not "
                f"exist on the local server: commit data to it first, or leave out {input_param} "
                "to run on the demo data"
            )
        return named
    demo = CommitRef.parse(default_ref)
    if arguments.get("source") or _holds_files(client, demo):
        print(f"using the data on {demo} as it is")
        return demo
    _seed(client, demo, kind, scratch)
    return demo


def _holds_files(client, branch: CommitRef) -> bool:
    try:
        inspect_commit(client, branch)
    except NotFoundError:
        return False
    return any(True for _ in client.pfs.list_file(file=branch.with_path("/").pfs_file()))


def run_local(name: str, data_dir: Path, arguments: dict, verbose: bool = False) -> CommitRef:
    """Run pipeline ``name`` locally on its demo data, or on the input the user named;
    return the commit it produced."""
    pipeline_named(name)
    kind = DEMO_INPUTS[name][2]
    if kind == "issues" and arguments.get("source"):
        _check_issues_source(arguments["source"])
    with local_session(data_dir) as server, tempfile.TemporaryDirectory() as tmp:
        client = connect(server.address)
        source = _input_branch(client, name, arguments, Path(tmp))
        _, result = run_once(name, server, arguments, verbose)
        if name == "mnist_tfjob":
            _report_serving(client, result)
        if kind == "issues":
            _report_serving(client, result, builds_repo="build")
            _summarize(client, result, Path(tmp))
        if kind == "mnist" and client.pfs.path_exists(result.with_path("/model").pfs_file()):
            _predict(client, result, source.at(inspect_commit(client, source).commit.id), Path(tmp))
        print(
            f"\nthe data is in {Path(data_dir) / 'pfs'}; look at it with: kfp-pachyderm local "
            f"serve --data-dir {Path(data_dir) / 'pfs'} (then PACHD_ADDRESS=grpc://127.0.0.1:"
            "30650 kfp-pachyderm pfs list-repo)"
        )
        return result
