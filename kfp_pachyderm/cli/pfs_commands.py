"""Read commands against any pachd (the local one by default): list repos, commits and files,
get a file, inspect a commit with its provenance record.

They exist so a user can look at a run's results without pachctl, which does not know the
library's provenance record and is not installed next to the embedded local server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from pachyderm_sdk.api import pfs

from kfp_pachyderm.cli.options import add_address_option
from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.errors import InvalidReferenceError, OperationError, UsageError
from kfp_pachyderm.pfs.commits import inspect_commit, is_finished, resolve
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors
from kfp_pachyderm.steps.datums import INDEX_KEY, decode_index


def list_repo(args: argparse.Namespace) -> int:
    """Print every user repo with its size and description, by name."""
    client = connect(args.address)
    with rpc_errors("listing repos"):
        repos = sorted(client.pfs.list_repo(type="user"), key=lambda r: _repo_name(r.repo))
    _table(
        ("REPO", "SIZE", "DESCRIPTION"),
        [(_repo_name(r.repo), _size(r.size_bytes_upper_bound), r.description) for r in repos],
    )
    return 0


def list_commit(args: argparse.Namespace) -> int:
    """Print the commits of a repo, or of a branch's history, newest first, with the step
    that wrote each (from the library's provenance record)."""
    ref = _commit_ref(args.ref, "list-commit")
    client = connect(args.address)
    to = ref.pfs_commit() if ref.branch or ref.commit else None
    with rpc_errors(f"listing commits of {ref}"):
        infos = list(client.pfs.list_commit(repo=ref.pfs_repo(), to=to))
    branches = _branches_of(client, ref, infos)
    rows = []
    for info in sorted(infos, key=lambda i: i.started, reverse=True):
        record = read_provenance(info)
        rows.append(
            (
                info.commit.id,
                branches.get(info.commit.id, "-"),
                _time(info.started),
                _time(info.finished) if is_finished(info) else "open",
                _size(info.size_bytes_upper_bound),
                record.step if record and record.step else "-",
                _clip(info.error),
            )
        )
    _table(("COMMIT", "BRANCH", "STARTED", "FINISHED", "SIZE", "STEP", "ERROR"), rows)
    return 0


def list_file(args: argparse.Namespace) -> int:
    """Print the entries of a directory in a commit (or the one file a path names)."""
    client = connect(args.address)
    ref = resolve(client, CommitRef.parse(args.ref))
    with rpc_errors(f"listing {ref}"):
        top = client.pfs.inspect_file(file=ref.pfs_file())
        is_dir = top.file_type == pfs.FileType.DIR
        infos = list(client.pfs.list_file(file=ref.pfs_file())) if is_dir else [top]
    _table(
        ("PATH", "TYPE", "SIZE"),
        [(f.file.path, pfs.FileType(f.file_type).name.lower(), _size(f.size_bytes)) for f in infos],
    )
    return 0


def get_file(args: argparse.Namespace) -> int:
    """Write one file's bytes to stdout, or to ``--output`` (replaced whole, never partly)."""
    ref = CommitRef.parse(args.ref)
    if ref.path in (None, "/"):
        raise InvalidReferenceError(
            f"get-file needs a file path in {args.ref!r}: use repo@branch:/path/to/file"
        )
    output = _output_path(args.output) if args.output else None
    client = connect(args.address)
    ref = resolve(client, ref)
    with rpc_errors(f"reading {ref}"):
        info = client.pfs.inspect_file(file=ref.pfs_file())
        if info.file_type == pfs.FileType.DIR:
            raise UsageError(
                f"{args.ref!r} is a directory: get-file reads one file; see its contents with "
                f"`kfp-pachyderm pfs list-file {args.ref}`"
            )
        chunks = (message.value for message in client.pfs.get_file(file=ref.pfs_file()))
        if output is None:
            _write_stdout(chunks)
        else:
            _write_file(chunks, output)
    return 0


def inspect_commit_command(args: argparse.Namespace) -> int:
    """Print a commit and the provenance record the library keeps on it, as text or JSON."""
    ref = _commit_ref(args.ref, "inspect-commit")
    client = connect(args.address)
    info = inspect_commit(client, ref)
    record = read_provenance(info)
    commit = {
        "commit": info.commit.id,
        "repo": _repo_name(info.commit.repo),
        "branch": _branches_of(client, ref, [info]).get(info.commit.id),
        "parent": info.parent_commit.id if info.parent_commit else None,
        "started": info.started.isoformat() if info.started else None,
        "finished": info.finished.isoformat() if is_finished(info) else None,
        "size_bytes": info.size_bytes_upper_bound,
        "error": info.error,
        "description": info.description,
    }
    provenance = asdict(record) if record else None
    if args.json:
        print(json.dumps({**commit, "provenance": provenance}, indent=2))
        return 0
    shown = {
        **commit,
        "started": _time(info.started),
        "finished": _time(info.finished) if is_finished(info) else "open",
        "size_bytes": f"{_size(info.size_bytes_upper_bound)} ({info.size_bytes_upper_bound} bytes)",
    }
    _fields(shown.items())
    if provenance is None:
        print("provenance   none: not written by kfp-pachyderm")
        return 0
    print("provenance")
    _fields(provenance.items(), indent="  ")
    return 0


def list_datum(args: argparse.Namespace) -> int:
    """Print a step commit's datums, as ``pachctl list datum`` does for a Pachyderm job: each
    datum's ID, whether it ran for this commit or was carried over from an earlier one, how
    many files it wrote and how long its function took (for a carried datum, when it ran);
    exit 1 for a commit finished with an error (which holds no datums)."""
    ref = _commit_ref(args.ref, "datums")
    client = connect(args.address)
    info = inspect_commit(client, ref)
    index = decode_index(dict(info.metadata or {}).get(INDEX_KEY))
    if index is None:
        if info.error:
            print(f"{ref.repo}@{info.commit.id} finished with an error: {info.error}")
            return 1
        if not is_finished(info):
            raise UsageError(
                f"{ref.repo}@{info.commit.id} is still open: its datums are recorded when its "
                "step finishes it"
            )
        raise UsageError(
            f"{ref.repo}@{info.commit.id} has no datums: only the output commit of a pfs_step "
            "records them"
        )
    rows = [
        {
            "datum": datum,
            "state": {True: "ran", False: "carried"}.get(outputs.ran, "-"),
            "files": len(outputs.files),
            "seconds": outputs.seconds,
        }
        for datum, outputs in sorted(index.items())
    ]
    if args.json:
        print(json.dumps({"commit": f"{ref.repo}@{info.commit.id}", "datums": rows}, indent=2))
        return 0
    _table(
        ("DATUM", "STATE", "FILES", "TIME"),
        [(r["datum"], r["state"], str(r["files"]), _seconds(r["seconds"])) for r in rows],
    )
    ran = sum(r["state"] == "ran" for r in rows)
    carried = sum(r["state"] == "carried" for r in rows)
    unknown = len(rows) - ran - carried
    print(
        f"{len(rows)} datums: {ran} ran, {carried} carried over"
        + (f", {unknown} recorded before states were" if unknown else "")
    )
    return 0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _commit_ref(text: str, command: str) -> CommitRef:
    ref = CommitRef.parse(text)
    if ref.path is not None:
        raise InvalidReferenceError(
            f"{command} takes a commit reference without a path, not {text!r}: "
            "use repo, repo@branch or repo@<commit id>"
        )
    return ref


def _output_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise UsageError(f"output {text!r} is a directory: give a file name in it")
    if not path.parent.is_dir():
        raise UsageError(
            f"output directory {str(path.parent)!r} (of {text!r}) does not exist: create it first"
        )
    return path


def _write_stdout(chunks: Iterable[bytes]) -> None:
    sys.stdout.flush()
    try:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): send what is still buffered nowhere, quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _write_file(chunks: Iterable[bytes], path: Path) -> None:
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as f:
            partial = Path(f.name)
            try:
                for chunk in chunks:
                    f.write(chunk)
            except BaseException:
                partial.unlink()
                raise
        os.replace(partial, path)
    except OSError as err:
        raise OperationError(f"cannot write {str(path)!r}: {err.strerror}") from err


def _branches_of(client, ref: CommitRef, infos: list[pfs.CommitInfo]) -> dict[str, str]:
    """Each commit's branch: the branch whose history holds it (the default one first). pachd
    clears the branch in the commits it returns, so it is found from the branches' heads and
    the commits' parents."""
    if ref.branch:
        return {info.commit.id: ref.branch for info in infos}
    parent = {i.commit.id: i.parent_commit.id if i.parent_commit else "" for i in infos}
    with rpc_errors(f"listing branches of {ref}"):
        heads = {
            b.branch.name: b.head.id for b in client.pfs.list_branch(repo=ref.pfs_repo()) if b.head
        }
    found: dict[str, str] = {}
    for name in sorted(heads, key=lambda n: (n != DEFAULT_BRANCH, n)):
        commit = heads[name]
        while commit in parent and commit not in found:
            found[commit] = name
            commit = parent[commit]
    return found


def _repo_name(repo: pfs.Repo) -> str:
    return str(CommitRef(repo.name, project=repo.project.name))


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"


def _clip(error: str, width: int = 60) -> str:
    line = " ".join(error.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip())


def _fields(items: Iterable[tuple[str, object]], indent: str = "") -> None:
    for key, value in items:
        if isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
        print(f"{indent}{key:<12} {value if value not in (None, '') else '-'}")


def add_pfs_commands(commands: argparse._SubParsersAction) -> None:
    """Register the ``pfs`` command group, and ``datums``, on the ``kfp-pachyderm`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    add_address_option(common)
    _commit_command(
        commands.add_parser(
            "datums",
            parents=[common],
            help="a step commit's datums: ran or carried over, files, time",
            description="The datums of the output commit REF of a pfs_step, as pachctl list "
            "datum shows a job's: each datum's ID, whether it ran for this commit or was carried "
            "over unchanged from an earlier one, the files it wrote, and how long its function "
            "took.",
        ),
        "e.g. split@master or split@<commit id>",
        list_datum,
    )
    group = commands.add_parser(
        "pfs",
        help="look at repos, commits and files on any pachd",
        description="Read commands against any pachd, found as the library finds it: --address, "
        "PACHD_ADDRESS, the pachctl config, or in-cluster settings. To look at a local run's "
        "data, serve its data directory (`kfp-pachyderm local serve --data-dir "
        "~/.kfp-pachyderm/run/pfs`; a `run --local --data-dir DIR` keeps it in DIR/pfs) and "
        "point PACHD_ADDRESS at the address it prints.",
    )
    add_address_option(group)
    pfs_commands = group.add_subparsers(dest="pfs_command", required=True)

    repos = pfs_commands.add_parser("list-repo", parents=[common], help="repos with size")
    repos.set_defaults(run=list_repo)

    commits = pfs_commands.add_parser(
        "list-commit",
        parents=[common],
        help="commits, newest first, with the step that wrote each",
        description="The commits of REPO, or the history of REPO@BRANCH, newest first.",
    )
    commits.add_argument("ref", metavar="REPO[@BRANCH]", help="e.g. model or model@master")
    commits.set_defaults(run=list_commit)

    files = pfs_commands.add_parser("list-file", parents=[common], help="a directory's entries")
    files.add_argument("ref", metavar="REF", help="e.g. model@master:/ or model@<commit>:/dir")
    files.set_defaults(run=list_file)

    get = pfs_commands.add_parser(
        "get-file", parents=[common], help="a file's bytes to stdout or --output"
    )
    get.add_argument("ref", metavar="REF", help="e.g. model@master:/model.keras")
    get.add_argument("-o", "--output", help="write to this file (its directory must exist)")
    get.set_defaults(run=get_file)

    _commit_command(
        pfs_commands.add_parser(
            "inspect-commit",
            parents=[common],
            help="a commit and its provenance record",
            description="The commit REF names (a commit ID, or a branch's head) and the "
            "provenance record kfp-pachyderm keeps on it: inputs, step, KFP run and task, image, "
            "code, parameters.",
        ),
        "e.g. model@master or model@<commit id>",
        inspect_commit_command,
    )


def _commit_command(
    parser: argparse.ArgumentParser, example: str, run: Callable[[argparse.Namespace], int]
) -> None:
    """A command about one commit: its REF argument, ``--json``, and what it runs."""
    parser.add_argument("ref", metavar="REF", help=example)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(run=run)
