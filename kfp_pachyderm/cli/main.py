"""The ``kfp-pachyderm`` command.

Exit codes: 0 success, 1 the work failed, 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from kfp_pachyderm.cli.images import add_image_commands
from kfp_pachyderm.cli.options import (
    ADDRESS_HELP,
    add_address_option,
    directory,
    image_registry,
    kfp_host,
    port_number,
    positive,
)
from kfp_pachyderm.cli.pfs_commands import add_pfs_commands
from kfp_pachyderm.errors import KfpPachydermError, RunCancelled, RunFailed, UsageError

DEFAULT_DATA_DIR = Path(os.environ.get("KFP_PACHYDERM_HOME", "~/.kfp-pachyderm")).expanduser()
LOCAL_TOKEN_ENV = "KFP_PACHYDERM_LOCAL_TOKEN"


def _local_serve(args: argparse.Namespace) -> int:
    from kfp_pachyderm.local.server import LocalPachyderm

    token = os.environ.get(LOCAL_TOKEN_ENV) or None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as err:
            raise UsageError(
                f"cannot read --token-file {args.token_file}: {err.strerror}"
            ) from None
        if not token:
            raise UsageError(
                f"--token-file {args.token_file} is empty: put the token in it, or leave the "
                "option out to run without a token check"
            )
    if not (args.data_dir.is_dir() or args.create):
        raise UsageError(
            f"no local Pachyderm data at {args.data_dir}: pass the --data-dir of an earlier run "
            "(run --local keeps it in <data dir>/pfs), or --create to start an empty one"
        )
    server = LocalPachyderm(
        args.data_dir, port=args.port, host=args.host, token=token, s3_port=args.s3_port
    )
    address = server.start()
    print(f"local Pachyderm server (development default, not pachd) at {address}", flush=True)
    if server.s3_endpoint:
        print(f"S3 gateway at {server.s3_endpoint}", flush=True)
    print(f"data directory: {server.data_dir}", flush=True)
    if token:
        print("token check: on", flush=True)
    if args.address_file:
        Path(args.address_file).write_text(address)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


def _trace(args: argparse.Namespace) -> int:
    import json

    from kfp_pachyderm.lineage.trace import trace
    from kfp_pachyderm.oci.reference import is_image_reference
    from kfp_pachyderm.pfs.connection import connect
    from kfp_pachyderm.pfs.refs import CommitRef

    if not is_image_reference(args.ref):
        CommitRef.parse(args.ref)  # a malformed reference fails before any connection
    client = connect(args.address)
    graph = trace(client, args.ref)
    print(json.dumps(graph.to_json(), indent=2) if args.json else graph.to_text())
    if args.openlineage:
        from kfp_pachyderm.lineage.openlineage import emit, run_events

        emit(run_events(graph, args.kfp_host, client.address), args.openlineage)
    return 0


def _target_and_arguments(args: argparse.Namespace):
    """The pipeline the command names and its ``--param`` values, typed and checked."""
    from kfp_pachyderm.cli.params import parse_pairs, pipeline_arguments
    from kfp_pachyderm.cli.targets import resolve_target

    target = resolve_target(args.pipeline)
    arguments = pipeline_arguments(
        target.label, target.pipeline, parse_pairs(args.param), target.declared
    )
    return target, arguments


def _local_data(args: argparse.Namespace, target, arguments: dict):
    """What ``run --local`` reads, checked before the server starts."""
    from kfp_pachyderm.cli.run_local import LocalData

    spec = target.spec(args.input)
    if args.put is not None and not Path(args.put).expanduser().exists():
        raise UsageError(f"--put {args.put!r}: no such file or directory")
    if args.mirror and args.put is None:
        raise UsageError("--mirror needs --put PATH: the folder the branch is to mirror")
    return LocalData(
        spec,
        target.data_branch(arguments, spec.data),
        named=spec.data in arguments,
        put=str(Path(args.put).expanduser()) if args.put is not None else None,
        mirror=args.mirror,
    )


def _run(args: argparse.Namespace) -> int:
    target, arguments = _target_and_arguments(args)
    if args.local:
        from kfp_pachyderm.cli.run_local import run_local

        data = _local_data(args, target, arguments)
        run_local(target, args.data_dir, arguments, data, args.verbose)
        return 0
    if args.put is not None or args.mirror:
        raise UsageError(
            "--put and --mirror commit to the local server (--local); for a cluster, commit "
            "with the commit_data component or pachctl put file"
        )
    from kfp_pachyderm.cli.run_remote import submit_and_follow

    return 0 if submit_and_follow(target, args.host, args.experiment, arguments) else 1


def _watch(args: argparse.Namespace) -> int:
    from kfp_pachyderm.cli.watch import kfp_submitter, local_submitter
    from kfp_pachyderm.kfp.watcher import watch
    from kfp_pachyderm.pfs.connection import connect
    from kfp_pachyderm.pfs.refs import CommitRef

    target, params = _target_and_arguments(args)
    spec = target.spec(args.input)
    branch = CommitRef.parse(args.branch)
    if args.host:
        submitter = kfp_submitter(args.host, target, spec, args.experiment, params)
        watch(connect(args.address), branch, target.label, submitter, args.max_runs)
        return 0
    from kfp_pachyderm.cli.run_local import local_session
    from kfp_pachyderm.pfs.commits import ensure_repo

    with local_session(args.data_dir, args.port) as server:
        client = connect(server.address)
        ensure_repo(client, branch)  # a new server: the repo to commit to
        print(f"watching {branch.branch_ref()}: commit to it at {server.address}", flush=True)
        submitter = local_submitter(target, spec, server, params)
        watch(client, branch, target.label, submitter, args.max_runs)
    return 0


def _finish_open(args: argparse.Namespace) -> int:
    from kfp_pachyderm.pfs.commits import finish_open_head, open_head
    from kfp_pachyderm.pfs.connection import connect
    from kfp_pachyderm.pfs.refs import CommitRef

    if args.run_id is not None and not args.run_id.strip():
        raise UsageError(
            "--run '' is empty: pass the ID of the run that opened the commit, or --commit ID "
            "for a commit opened by a run without one (the error that named the commit says it)"
        )
    branch = CommitRef.parse(args.branch).branch_ref()
    client = connect(args.address)
    if not client.pfs.repo_exists(branch.pfs_repo()):
        raise UsageError(f"repo {branch.repo!r} does not exist on {client.address}")
    head = open_head(client, branch)
    if head is None:
        print(f"{branch} has no open commit written by kfp-pachyderm; nothing to finish")
        return 0
    info, record = head
    opened_by = record.kfp_run_id or "(none)"
    if args.run_id is not None and record.kfp_run_id != args.run_id:
        raise UsageError(
            f"the open commit {info.commit.id} on {branch} was opened by run {opened_by}, not "
            f"--run {args.run_id}; pass that run's ID"
            + ("" if record.kfp_run_id else f", or --commit {info.commit.id}")
        )
    if args.commit is not None and info.commit.id != args.commit:
        raise UsageError(
            f"--commit {args.commit} is not the open head of {branch}: that is {info.commit.id} "
            f"(opened by run {opened_by})"
        )
    over = f"run {args.run_id} is over" if args.run_id else "finished from the command line"
    if not finish_open_head(client, branch, info.commit.id, over):
        raise RunFailed(f"{branch.repo}@{info.commit.id} is still open: it could not be finished")
    print(f"finished {branch.repo}@{info.commit.id} with an error: {over}")
    return 0


def _compile(args: argparse.Namespace) -> int:
    from kfp_pachyderm.kfp.compile import compile_components, compile_pipeline, compile_pipelines

    if args.pipeline:
        from kfp_pachyderm.cli.targets import resolve_target
        from kfp_pachyderm.kfp.images import image_registry

        with image_registry(args.image_registry):  # while the file loads: its steps' images
            target = resolve_target(args.pipeline)
        output = args.output or (args.out_dir or Path.cwd()) / f"{target.name}.yaml"
        print(compile_pipeline(target.pipeline, output))
        return 0
    if args.output:
        raise UsageError("--output names one pipeline's YAML: give the PIPELINE too")
    components_out = args.out_dir / "components" if args.out_dir else None
    pipelines_out = args.out_dir / "pipelines" if args.out_dir else None
    for path in compile_components(components_out, args.image_registry):
        print(path)
    for path in compile_pipelines(pipelines_out, args.image_registry):
        print(path)
    return 0


PIPELINE_HELP = (
    "a built-in pipeline (%(builtin)s) or your own: path/to/file.py:function or "
    "package.module:function"
)


class _BuiltinNames:
    """The built-in pipelines' names, as their specs list them; looked up only when a help
    text shows them (loading the pipelines takes a second or two)."""

    def __str__(self) -> str:
        from kfp_pachyderm.pipelines import SPECS

        return ", ".join(SPECS)


def _add_pipeline_argument(parser: argparse.ArgumentParser, *names: str, **options) -> None:
    action = parser.add_argument(*names, help=PIPELINE_HELP, **options)
    action.builtin = _BuiltinNames()  # for %(builtin)s in its help


def _add_submission_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", default="kfp-pachyderm", help="KFP experiment (--host)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a pipeline parameter"
    )
    parser.add_argument(
        "--input",
        metavar="PARAMETER",
        help="the pipeline's data input (default: a built-in pipeline's own, or the one "
        "parameter whose default is a commit reference such as 'raw_data@master')",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kfp-pachyderm``."""
    parser = argparse.ArgumentParser(
        prog="kfp-pachyderm",
        description="Kubeflow Pipelines components whose artifacts are Pachyderm commits.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages; stream every step's log"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--address", default=None, help=ADDRESS_HELP)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the embedded local Pachyderm server")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    serve = local_commands.add_parser(
        "serve",
        help="run the local Pachyderm server (a development default, not pachd)",
        description="Serve the subset of pachd's gRPC API this library uses, on a real socket, "
        f"for the real pachyderm_sdk client. A token in ${LOCAL_TOKEN_ENV} or --token-file "
        "turns on the token check.",
    )
    serve.add_argument("--port", type=port_number, default=30650, help="gRPC port (0: any free)")
    serve.add_argument("--s3-port", type=port_number, default=None, help="S3 gateway port")
    serve.add_argument(
        "--create", action="store_true", help="start an empty store when --data-dir has none"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind")
    serve.add_argument(
        "--data-dir", type=directory, default=DEFAULT_DATA_DIR / "pfs", help="where data is kept"
    )
    serve.add_argument("--token-file", help="file holding the token clients must send")
    serve.add_argument("--address-file", help="write the address here once listening")
    serve.set_defaults(run=_local_serve)

    run = commands.add_parser(
        "run",
        help="run a pipeline locally (--local) or on a KFP cluster (--host)",
        description="Run PIPELINE: a built-in one (listed below) or your own "
        "(path/to/file.py:function or package.module:function). With --local: start the local "
        "Pachyderm server and S3 gateway, commit --put PATH to the data input (a built-in "
        "pipeline's demo data is seeded when its input is empty), run the pipeline with "
        "kfp.local, a line per step, and print the result's provenance. With --host: submit it "
        "with kfp.Client and follow the run to its end (exit 1 if it fails).",
    )
    _add_pipeline_argument(run, "pipeline")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="run here, with no cluster")
    where.add_argument(
        "--host", type=kfp_host, help="the KFP API endpoint, e.g. http://localhost:8080"
    )
    _add_submission_options(run)
    run.add_argument(
        "--data-dir", type=directory, default=DEFAULT_DATA_DIR / "run", help="local data (--local)"
    )
    run.add_argument(
        "--put",
        metavar="PATH",
        help="commit this local file or folder to the data input first (--local): its files are "
        "added or replaced, nothing else on the branch is removed",
    )
    run.add_argument(
        "--mirror",
        action="store_true",
        help="with --put: the branch then holds exactly PATH's files (others are deleted)",
    )
    run.set_defaults(run=_run)

    watch = commands.add_parser(
        "watch",
        help="submit one pipeline run per new commit on a branch",
        description="Subscribe to REPO@BRANCH and run PIPELINE once for every finished commit, "
        "with its data parameter pinned to that commit: on the KFP cluster at --host, or here "
        "with --local (kfp.local on the local Pachyderm server, which the watcher starts and "
        "whose address it prints). Marks each commit in Pachyderm first, so a restarted "
        "watcher never runs a commit twice; one whose run failed or was cancelled it runs "
        "again once, and says so.",
    )
    watch.add_argument("branch", help="the data branch, e.g. mnist@master")
    _add_pipeline_argument(watch, "--pipeline", required=True)
    where = watch.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", type=kfp_host, help="the KFP API endpoint: submit each run there")
    where.add_argument(
        "--local", action="store_true", help="run each here with kfp.local, on the local server"
    )
    _add_submission_options(watch)
    add_address_option(watch)
    watch.add_argument(
        "--data-dir", type=directory, default=DEFAULT_DATA_DIR / "run", help="local data (--local)"
    )
    watch.add_argument(
        "--port", type=port_number, default=0, help="the local server's gRPC port (--local)"
    )
    watch.add_argument(
        "--max-runs", type=positive, default=None, help="stop after this many runs (default: never)"
    )
    watch.set_defaults(run=_watch)

    trace = commands.add_parser(
        "trace",
        help="print the upstream provenance graph of a commit",
        description="Walk every commit REF came from (Pachyderm provenance and the library's "
        "records) and print it. The address is found as the library finds it: --address, "
        "PACHD_ADDRESS, the pachctl config, or in-cluster settings.",
    )
    trace.add_argument(
        "ref",
        help="commit reference (model@master, model@<commit id>) or image reference "
        "(registry/repo:<commit id>)",
    )
    add_address_option(trace)
    trace.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    trace.add_argument(
        "--openlineage", help="also emit OpenLineage RunEvents to this file or http(s) endpoint"
    )
    trace.add_argument(
        "--kfp-host",
        default="kfp",
        help="the KFP host the runs came from: the OpenLineage job namespace (with --openlineage)",
    )
    trace.set_defaults(run=_trace)

    compile_ = commands.add_parser(
        "compile",
        help="compile a pipeline (yours or a built-in one) or every built-in one to YAML",
        description="Compile PIPELINE to <function>.yaml (or --output), for the KFP UI; "
        "without PIPELINE, every component to its component.yaml and every built-in pipeline "
        "to pipelines/<name>.yaml (or under --out-dir).",
    )
    _add_pipeline_argument(compile_, "pipeline", nargs="?")
    compile_.add_argument("-o", "--output", type=Path, help="the YAML file (with PIPELINE)")
    compile_.add_argument(
        "--image-registry",
        type=image_registry,
        help="registry/organisation of the runtime image, e.g. registry.example.com/ml",
    )
    compile_.add_argument(
        "--out-dir",
        type=Path,
        help="write components/<name>/component.yaml and pipelines/<name>.yaml under this folder "
        "instead of the repository (with PIPELINE: <function>.yaml there)",
    )
    compile_.set_defaults(run=_compile)

    finish = commands.add_parser(
        "finish-open",
        help="finish the commit a run that is over left open on a branch",
        description="A step killed before it could finish its output commit (kill -9, a KFP "
        "run terminated before its exit handler ran) leaves the branch's head open, and the "
        "next write there stops with this command in its message. Finish that commit with an "
        "error, after checking that run --run opened it (or that it is --commit, for a commit "
        "opened by a run without an ID, such as your own kfp.local script); then check that it "
        "is finished (exit 1 if not).",
    )
    finish.add_argument("branch", help="the branch, e.g. model@master")
    which = finish.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", dest="run_id", help="the ID of the run that opened it")
    which.add_argument("--commit", help="the open commit's ID (a run without an ID opened it)")
    add_address_option(finish)
    finish.set_defaults(run=_finish_open)
    add_pfs_commands(commands)
    add_image_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kfp-pachyderm`` command: exit code 0 on success, 1 when a run
    failed (its failing step's own error last), 2 for bad usage or input (one line), 130 when
    cancelled; ``--debug`` shows the traceback."""
    args = build_parser().parse_args(argv)
    _log_to_console(args.verbose)
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as pachctl does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as err:
        if args.debug:
            raise
        code, kind = _exit_code(err)
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"kfp-pachyderm: {kind}: {text}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("kfp-pachyderm: cancelled", file=sys.stderr)
        return 130


def _log_to_console(verbose: bool) -> None:
    """Log records reach the console from WARNING up (all of them with ``verbose``); a run's
    log file gets them from INFO up (:mod:`~kfp_pachyderm.cli.step_log`)."""
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [console]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:  # grpc and urllib3 log a refused call before we report it ourselves
        for noisy in ("grpc._channel", "urllib3.connectionpool"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)


def _exit_code(err: Exception) -> tuple[int, str]:
    """Bad usage is 2, an operation that failed (a server gone, a full disk, a failed run) 1."""
    if isinstance(err, RunCancelled):
        return 130, "cancelled"
    if isinstance(err, UsageError):
        return 2, "error"
    if isinstance(err, KfpPachydermError | OSError):
        return 1, "failed"
    return 1, f"failed ({type(err).__name__}; --debug shows where)"
