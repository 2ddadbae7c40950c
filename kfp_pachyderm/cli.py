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

from .errors import KfpPachydermError

DEFAULT_DATA_DIR = Path(os.environ.get("KFP_PACHYDERM_HOME", "~/.kfp-pachyderm")).expanduser()
LOCAL_TOKEN_ENV = "KFP_PACHYDERM_LOCAL_TOKEN"


def _local_serve(args: argparse.Namespace) -> int:
    from .local.server import LocalPachyderm

    token = os.environ.get(LOCAL_TOKEN_ENV) or None
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
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


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.data_dir)
    return 0


def _trace(args: argparse.Namespace) -> int:
    import json

    from .connection import connect
    from .lineage import trace
    from .refs import CommitRef

    client = connect(args.address)
    graph = trace(client, CommitRef.parse(args.ref))
    print(json.dumps(graph.to_json(), indent=2) if args.json else graph.to_text())
    if args.openlineage:
        from .openlineage import emit, run_events

        emit(run_events(graph, args.kfp_host, client.address), args.openlineage)
    return 0


def _compile(args: argparse.Namespace) -> int:
    from .compile import compile_components

    for path in compile_components(args.out_dir, args.image_registry):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kfp-pachyderm``."""
    parser = argparse.ArgumentParser(
        prog="kfp-pachyderm",
        description="Kubeflow Pipelines components whose artifacts are Pachyderm commits.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
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
    serve.add_argument("--port", type=int, default=30650, help="gRPC port (0: any free port)")
    serve.add_argument("--s3-port", type=int, default=None, help="S3 gateway port")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind")
    serve.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR / "pfs", help="where data is kept"
    )
    serve.add_argument("--token-file", help="file holding the token clients must send")
    serve.add_argument("--address-file", help="write the address here once listening")
    serve.set_defaults(run=_local_serve)

    demo = commands.add_parser(
        "demo",
        help="run the library end to end on the local server",
        description="Start the local server, commit a directory, read it back, show the commit.",
    )
    demo.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR / "demo", help="where data is kept"
    )
    demo.set_defaults(run=_demo)

    trace = commands.add_parser(
        "trace",
        help="print the upstream provenance graph of a commit",
        description="Walk every commit REF came from (Pachyderm provenance and the library's "
        "records) and print it. The address is found as the library finds it: --address, "
        "PACHD_ADDRESS, the pachctl config, or in-cluster settings.",
    )
    trace.add_argument("ref", help="commit reference, e.g. model@master or model@<commit id>")
    trace.add_argument("--address", help="pachd address (default: PACHD_ADDRESS and the rest)")
    trace.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    trace.add_argument(
        "--openlineage", help="also emit OpenLineage RunEvents to this file or http(s) endpoint"
    )
    trace.add_argument("--kfp-host", default="kfp", help="OpenLineage job namespace")
    trace.set_defaults(run=_trace)

    compile_ = commands.add_parser(
        "compile",
        help="regenerate the component YAML",
        description="Compile every component to its component.yaml (or under --out-dir).",
    )
    compile_.add_argument(
        "--image-registry",
        help="registry/organisation of the runtime image, e.g. registry.example.com/ml",
    )
    compile_.add_argument("--out-dir", type=Path, help="write here instead of components/")
    compile_.set_defaults(run=_compile)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kfp-pachyderm`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except KfpPachydermError as err:
        print(f"kfp-pachyderm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
