"""The ``kfp-pachyderm pfs`` read commands, against a real local server: what they print, and
one-line errors naming the bad value for every bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm.cli.main import main
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree

from .conftest import CLI

BINARY = bytes(range(256)) * 64
UNKNOWN_ID = "0123456789ab4def0123456789abcdef"


@pytest.fixture
def data(tmp_path: Path, server: LocalPachyderm, client: Client, monkeypatch) -> dict[str, str]:
    """images@master holds /a.txt and /sub/b.bin; model@master has a failed then a good commit
    of step train. PACHD_ADDRESS points at the server. Returns the commit IDs."""
    monkeypatch.setenv("PACHD_ADDRESS", server.address)
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("hello\n")
    (source / "sub" / "b.bin").write_bytes(BINARY)
    images = commit_data(client, str(source), CommitRef.parse("images@master")).ref
    model = CommitRef.parse("model@master")
    ensure_repo(client, model)
    record = ProvenanceRecord(
        inputs=[str(images)], step="train", kfp_run_id="run-1", parameters={"epochs": "2"}
    )
    with pytest.raises(RuntimeError), output_commit(client, model, provenance=record) as failed:
        raise RuntimeError("out of memory")
    with output_commit(client, model, provenance=record) as good:
        put_tree(client, good.pfs_commit(), source / "a.txt")
    return {"images": images.commit, "failed": failed.commit, "good": good.commit}


def command(capsys, *argv: str) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the ``kfp-pachyderm: error:`` lines of one in-process run."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, [line for line in err.splitlines() if line.startswith("kfp-pachyderm:")]


def run(capsys, *argv: str) -> tuple[int, str, list[str]]:
    """As :func:`command`, for a ``pfs`` read command."""
    return command(capsys, "pfs", *argv)


def test_list_repo_shows_each_repo_with_its_size(data, capsys):
    code, out, errors = run(capsys, "list-repo")
    assert code == 0 and not errors
    lines = out.splitlines()
    assert lines[0].split() == ["REPO", "SIZE", "DESCRIPTION"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["images", "16.0", "KiB"],
        ["model", "6", "B"],
    ]


def test_list_commit_is_newest_first_with_step_and_error(data, capsys):
    code, out, errors = run(capsys, "list-commit", "model@master")
    assert code == 0 and not errors
    header, *rows = out.splitlines()
    assert header.split() == ["COMMIT", "BRANCH", "STARTED", "FINISHED", "SIZE", "STEP", "ERROR"]
    assert [row.split()[0] for row in rows][:2] == [data["good"], data["failed"]]
    assert rows[0].split()[1] == "master" and rows[0].rstrip().endswith("train")
    assert rows[1].split()[-5:] == ["train", "RuntimeError:", "out", "of", "memory"]
    code, out, _ = run(capsys, "list-commit", "images")
    assert code == 0 and f"{data['images']}  master" in out and "commit_data" in out


def test_list_commit_of_a_repo_names_each_commits_branch(data, client: Client, tmp_path, capsys):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "x.txt").write_text("x")
    dev = commit_data(client, str(tmp_path / "dev"), CommitRef.parse("images@dev")).ref
    code, out, _ = run(capsys, "list-commit", "images")
    branches = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert code == 0 and branches[data["images"]] == "master" and branches[dev.commit] == "dev"


@pytest.mark.parametrize(
    "argv",
    [
        ["--address", "{address}", "pfs", "list-repo"],
        ["pfs", "--address", "{address}", "list-repo"],
        ["pfs", "list-repo", "--address", "{address}"],
    ],
)
def test_address_is_taken_before_or_after_the_subcommand(
    data, server: LocalPachyderm, monkeypatch, capsys, argv: list[str]
):
    monkeypatch.delenv("PACHD_ADDRESS")
    assert main([a.format(address=server.address) for a in argv]) == 0
    assert "images" in capsys.readouterr().out


@pytest.mark.slow
def test_a_reader_that_goes_away_is_no_error(data, client: Client, server, tmp_path: Path):
    many = tmp_path / "many"
    many.mkdir()
    for n in range(3000):
        (many / f"f{n:04d}.txt").write_text("x")
    commit_data(client, str(many), CommitRef.parse("many@master"))
    listing = subprocess.Popen(
        [*CLI, "pfs", "list-file", "many@master:/", "--address", server.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert listing.stdout.readline().split()[0] == b"PATH"
    listing.stdout.close()  # as `| head -1` does
    assert listing.wait(timeout=60) == 141 and listing.stderr.read() == b""


def test_list_file_lists_a_directory_or_the_one_file_a_path_names(data, capsys):
    code, out, errors = run(capsys, "list-file", "images@master:/")
    assert code == 0 and not errors
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["PATH", "TYPE"],
        ["/a.txt", "file"],
        ["/sub/", "dir"],
    ]
    code, out, _ = run(capsys, "list-file", f"images@{data['images']}:/sub")
    assert code == 0 and out.splitlines()[1].split() == ["/sub/b.bin", "file", "16.0", "KiB"]
    code, out, _ = run(capsys, "list-file", "images@master:/a.txt")
    assert code == 0 and out.splitlines()[1].split() == ["/a.txt", "file", "6", "B"]


def test_get_file_writes_stdout_or_a_file(data, capsys, tmp_path: Path):
    code, out, errors = run(capsys, "get-file", "images@master:/a.txt")
    assert (code, out, errors) == (0, "hello\n", [])
    target = tmp_path / "b.bin"
    target.write_bytes(b"old")
    code, out, _ = run(capsys, "get-file", "images@master:/sub/b.bin", "-o", str(target))
    assert code == 0 and out == "" and target.read_bytes() == BINARY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "pfs", "source"]


def test_get_file_writes_binary_bytes_to_stdout_unchanged(data):
    result = subprocess.run(
        [*CLI, "pfs", "get-file", "images@master:/sub/b.bin"], capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == BINARY


def test_inspect_commit_shows_the_commit_and_its_provenance_record(data, capsys):
    code, out, errors = run(capsys, "inspect-commit", "model@master")
    assert code == 0 and not errors
    fields = dict(line.split(None, 1) for line in out.splitlines() if " " in line.strip())
    assert fields["commit"] == data["good"] and fields["parent"] == data["failed"]
    assert fields["step"] == "train" and fields["parameters"] == "epochs=2"
    assert fields["kfp_run_id"] == "run-1" and fields["error"] == "-"
    code, out, _ = run(capsys, "inspect-commit", f"model@{data['failed']}", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["commit"] == data["failed"] and shown["finished"]
    assert shown["error"] == "RuntimeError: out of memory"
    assert shown["provenance"]["inputs"] == [f"images@master={data['images']}:/"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["list-file", "images@@master"], "'@master'"),
        (["inspect-commit", "images@master:/a.txt"], "'images@master:/a.txt'"),
        (["list-commit", "nope"], "nope"),
        (["list-file", "nope@master:/"], "nope"),
        (["list-commit", "images@dev"], "dev"),
        (["inspect-commit", f"images@{UNKNOWN_ID}"], UNKNOWN_ID),
        (["list-file", f"images@{UNKNOWN_ID}:/"], UNKNOWN_ID),
        (["list-file", "images@master:/missing"], "/missing"),
        (["get-file", "images@master:/missing"], "/missing"),
        (["get-file", "images@master:/sub"], "images@master:/sub"),
        (["get-file", "images@master"], "images@master"),
        (["get-file", "images@master:/a.txt", "-o", "{tmp}/missing/a.txt"], "{tmp}/missing'"),
        (["list-repo", "--address", "notaport:xx"], "notaport:xx"),
    ],
)
def test_bad_input_is_one_error_line_naming_it(data, capsys, tmp_path, argv, named):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    code, out, errors = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(errors) == 1 and errors[0].startswith("kfp-pachyderm: error: ")
    assert named.replace("{tmp}", str(tmp_path)) in errors[0]
    assert not (tmp_path / "missing").exists()


def datums(capsys, *argv: str) -> tuple[int, str, list[str]]:
    """As :func:`run`, for the top-level ``datums`` command."""
    return command(capsys, "datums", *argv)


def _upper(raw, out):
    from pathlib import Path

    for source in Path(raw).rglob("*.txt"):
        (Path(out) / source.name).write_text(source.read_text().upper())


def test_datums_lists_what_ran_and_what_was_carried_over(
    data, client: Client, capsys, tmp_path: Path
):
    from kfp_pachyderm.kfp.contract import step_record
    from kfp_pachyderm.steps.definition import define_step
    from kfp_pachyderm.steps.run import run_step

    step, _ = define_step(_upper, "upper", glob="/*")
    folder = tmp_path / "words"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.txt").write_text(name)
    words = commit_data(client, str(folder), CommitRef.parse("words@master")).ref
    run_step(client, step, {"raw": words}, {}, step_record())
    (folder / "b.txt").write_text("changed")
    words = commit_data(client, str(folder), CommitRef.parse("words@master")).ref
    second = run_step(client, step, {"raw": words}, {}, step_record()).ref
    capsys.readouterr()  # the steps' own lines

    code, out, errors = datums(capsys, "upper@master")
    assert code == 0 and errors == []
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("raw:/a.txt", "carried", "1"),
        ("raw:/b.txt", "ran", "1"),
        ("raw:/c.txt", "carried", "1"),
    ]
    assert out.splitlines()[-1] == "3 datums: 1 ran, 2 carried over"
    code, out, _ = datums(capsys, f"upper@{second.commit}", "--json")
    listed = json.loads(out)
    assert listed["commit"] == f"upper@{second.commit}"
    (changed,) = [d for d in listed["datums"] if d["state"] == "ran"]
    assert changed["datum"] == "raw:/b.txt" and changed["seconds"] >= 0


def test_datums_of_a_failed_or_a_plain_commit_say_why_there_are_none(data, capsys):
    code, out, _ = datums(capsys, f"model@{data['failed']}")
    assert code == 1 and "finished with an error: RuntimeError: out of memory" in out
    code, _, errors = datums(capsys, f"images@{data['images']}")
    assert code == 2 and errors == [
        f"kfp-pachyderm: error: images@{data['images']} has no datums: only the output commit "
        "of a pfs_step records them"
    ]
