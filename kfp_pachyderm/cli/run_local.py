"""``kfp-pachyderm run PIPELINE --local``: a pipeline end to end with no cluster.

Starts the embedded local Pachyderm server and its S3 gateway, puts the data in (``--put``: a
local folder committed to the pipeline's data input; for a built-in pipeline whose input is
empty, the demo data: the digits data set in the mnist.npz layout, or CSVs of issues in the
seed's layout, made offline), runs the pipeline with ``kfp.local`` (each step a subprocess,
local caching on, its outputs under the data directory), and ends with the provenance trace
of the result (a built-in pipeline's, or the last step's output of the user's own) and what
the pipeline's spec reports (:mod:`kfp_pachyderm.kfp.pipeline_spec`): for the MNIST pipelines,
predictions from the trained model; for issue_summarization, the titles the model writes for
held-out issues next to their true titles.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from kfp_pachyderm.cli.step_log import plain, step_lines
from kfp_pachyderm.cli.targets import PipelineTarget
from kfp_pachyderm.errors import NotFoundError, OperationError, RunCancelled, RunFailed, UsageError
from kfp_pachyderm.kfp.pipeline_spec import LocalResult, PipelineSpec
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import inspect_commit
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import LOCAL_RUN_PID_ENV, RUN_ID_ENV, read_provenance
from kfp_pachyderm.pfs.refs import CommitRef

LOCAL_ARGUMENTS = {"runner": "local", "workers": 1, "token_secret": ""}


def _seed(client, ref: CommitRef, kind: str, scratch: Path) -> None:
    """Commit the demo data of ``kind`` (a spec's ``demo_data``) to ``ref``."""
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


def _local_arguments(target: PipelineTarget, arguments: dict, server: LocalPachyderm) -> dict:
    """The validated ``arguments``; for a built-in pipeline over the local defaults (local
    runner, one worker, no token Secret, this server's S3 gateway) it takes."""
    if not target.builtin:
        return arguments
    merged = {**LOCAL_ARGUMENTS, "s3_endpoint": server.s3_endpoint, **arguments}
    return {key: value for key, value in merged.items() if key in target.parameters}


def _check_issues_source(source: str) -> None:
    """A local CSV (or folder of CSVs) of issues is checked before anything starts; a URL is
    checked by the split step, file by file, once committed."""
    if "://" in source:
        return
    from kfp_pachyderm.summarizer.data import check_issues_csv

    path = Path(source).expanduser()
    files = sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise UsageError(f"source {source!r} holds no .csv file of issues")
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


@contextmanager
def _cancellable(client, run_id: str) -> Iterator[None]:
    """While the run is in progress, SIGINT and SIGTERM stop it, and its steps (kfp.local
    would otherwise wait for a running step to end by itself); either way, every commit the
    run left open is finished with an error, so nothing blocks the next run."""

    def stop(signum: int, frame: object) -> None:
        _stop_steps()
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


def _stop_steps() -> None:
    """SIGTERM to every process under this one: the run's steps and what they started (where
    /proc lists children; elsewhere a step signalled with this process's group, as Ctrl-C
    does, stops by itself)."""
    found, parents = [], [os.getpid()]
    while parents:
        for tasks in Path(f"/proc/{parents.pop()}/task").glob("*/children"):
            try:
                children = [int(pid) for pid in tasks.read_text().split()]
            except OSError:  # gone meanwhile
                continue
            found += children
            parents += children
    for pid in found:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def finish_run_commits(client, run_id: str) -> list[str]:
    """Finish, with an error, the head of every branch that run ``run_id`` opened and left
    open; return them. Every branch on the local server is looked at, not only the spec's
    outputs: each output on whatever branch its step writes, and also the data branch a
    ``commit_source`` was being committed to, or a user's own step's output."""
    from kfp_pachyderm.pfs.commits import finish_abandoned

    return [
        f"{branch.repo}@{branch.branch}"
        for branch in _branches(client)
        if finish_abandoned(client, branch, run_id)
    ]


def _branches(client) -> Iterator[CommitRef]:
    """Every branch of every repo on the server: a step writes to its own output branch
    (``output_branch=``), the default one or another."""
    for info in client.pfs.list_branch():
        repo = info.branch.repo
        yield CommitRef(repo.name, branch=info.branch.name, project=repo.project.name)


def _failure_of(client, run_id: str) -> str:
    """The error of the step of run ``run_id`` that failed, from the commit it finished."""
    for branch in _branches(client):
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
    target: PipelineTarget,
    spec: PipelineSpec,
    server: LocalPachyderm,
    arguments: dict,
    verbose: bool = False,
) -> tuple[str, CommitRef | None]:
    """One run of ``target`` in a :func:`local_session`; return its run ID and the commit it
    produced (its ``spec``'s result, or the last step's output of a user's own pipeline),
    after printing that commit's provenance. SIGINT or SIGTERM cancels the run and finishes
    its open commits (:class:`RunCancelled`)."""
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    client = connect(server.address)
    log_path = Path(server.data_dir).parent / "logs" / f"{run_id}.log"
    print(f"run {run_id} of {target.label}")
    steps_see = {RUN_ID_ENV: run_id, LOCAL_RUN_PID_ENV: str(os.getpid())}
    try:
        with (
            _environment(**steps_see),
            _cancellable(client, run_id),
            step_lines(log_path, verbose) as reporter,
        ):
            target.pipeline(**_local_arguments(target, arguments, server))
    except RuntimeError as err:  # kfp.local's wrapper; the step's own error is on its commit
        cause = _failure_of(client, run_id) or _failure_in_log(log_path) or plain(str(err))
        raise RunFailed(f"{cause} (full log: {log_path})") from None
    result = _result_of(client, spec, arguments, reporter.outcomes)
    if result is None:
        print("\nthe pipeline wrote no commit")
        return run_id, None
    print(f"\nresult: {result.uri}")
    print("provenance:")
    print(trace(client, result).to_text())
    return run_id, result


def _result_of(client, spec: PipelineSpec, arguments: dict, outcomes) -> CommitRef | None:
    """The head of the spec's result branch; without one, the last step's output."""
    if spec.result is None:
        return CommitRef.parse(outcomes[-1].uri) if outcomes else None
    branch = CommitRef.parse(spec.result.ref(spec.values(arguments)))
    try:
        info = inspect_commit(client, branch, wait=True)
    except NotFoundError as err:
        raise OperationError(f"the pipeline produced no commit on {branch}") from err
    return branch.at(info.commit.id)


def _input_branch(client, data: LocalData, arguments: dict, scratch: Path) -> CommitRef:
    """The branch the run reads, with ``data.put`` committed to it first when given. The
    default of a pipeline with demo data (a built-in one) is seeded with it only while it is
    empty; any other branch must hold data already (or get it from the pipeline's
    ``source``)."""
    branch, demo = data.branch, data.spec.demo_data
    if data.put:
        result = commit_data(client, data.put, branch, mirror=data.mirror)
        done = "already held by" if result.reused else "committed to"
        print(f"{data.put} ({result.files} files) {done} {result.ref.with_path(None)}")
    elif demo and not data.named and not arguments.get("source"):
        if not _holds_files(client, branch):
            _seed(client, branch, demo, scratch)
            return branch
        print(f"using the data on {branch} as it is")
    elif arguments.get("source") or _holds_files(client, branch):
        print(f"using the data on {branch} as it is")
    else:
        where = "" if demo else " (your own pipeline: no demo data is seeded)"
        raise UsageError(
            f"the data input {data.parameter}={branch} holds no data on the local server"
            f"{where}: add --put PATH to commit a local file or folder to it first"
        )
    return branch


def _holds_files(client, branch: CommitRef) -> bool:
    try:
        inspect_commit(client, branch)
    except NotFoundError:
        return False
    return any(True for _ in client.pfs.list_file(file=branch.with_path("/").pfs_file()))


@dataclass(frozen=True)
class LocalData:
    """The data a local run reads: the pipeline's ``spec`` (its data input ``parameter``),
    the ``branch`` that parameter names, whether the user ``named`` it, and a local ``put``
    path to commit there first (with ``mirror``, the branch then holds exactly that path's
    files)."""

    spec: PipelineSpec
    branch: CommitRef
    named: bool = False
    put: str | None = None
    mirror: bool = False

    @property
    def parameter(self) -> str:
        """The pipeline's data input."""
        return self.spec.data


def cli_command() -> str:
    """How to call this command again from the current directory: ``kfp-pachyderm`` when
    that is the one on PATH, else its path (``.venv/bin/kfp-pachyderm``)."""
    here = Path(sys.executable).parent / "kfp-pachyderm"
    on_path = shutil.which("kfp-pachyderm")
    if not here.exists() or (on_path and Path(on_path).resolve() == here.resolve()):
        return "kfp-pachyderm"
    relative = os.path.relpath(here)
    return relative if not relative.startswith("../..") else str(here)


def run_local(
    target: PipelineTarget,
    data_dir: Path,
    arguments: dict,
    data: LocalData,
    verbose: bool = False,
) -> CommitRef | None:
    """Run ``target`` locally on ``data`` (for a built-in pipeline by default its demo
    data); return the commit it produced, after what its spec reports on it."""
    spec = data.spec
    if spec.demo_data == "issues" and arguments.get("source"):
        _check_issues_source(arguments["source"])
    with local_session(data_dir) as server, tempfile.TemporaryDirectory() as tmp:
        client = connect(server.address)
        source = _input_branch(client, data, arguments, Path(tmp))
        arguments = {**arguments, data.parameter: str(source)}
        _, result = run_once(target, spec, server, arguments, verbose)
        if result is not None and spec.report:
            read = source.at(inspect_commit(client, source).commit.id)
            local = LocalResult(client, result, read, spec.values(arguments), Path(tmp))
            for report in spec.report:
                report(local)
        command = cli_command()
        print(
            f"\nthe data is in {Path(data_dir) / 'pfs'}; look at it with: {command} local "
            f"serve --data-dir {Path(data_dir) / 'pfs'} (then PACHD_ADDRESS=grpc://127.0.0.1:"
            f"30650 {command} pfs list-repo)"
        )
        return result
