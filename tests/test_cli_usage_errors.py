"""Off the happy path at the command line: bad parameters, bad usage and bad server
input refused in one line before any side effect; --verbose output off a terminal."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm import CommitRef, LocalPachyderm, commit_data
from kfp_pachyderm.cli.main import main

from .conftest import CLI, one_error_line

BAD_PARAMS = [
    # (pipeline, --param, what the one line must name)
    ("mnist_tfjob", "nope=1", "unknown parameter 'nope'"),
    ("mnist_tfjob", "workers=abc", "workers='abc': expected a whole number"),
    ("mnist_tfjob", "workers=-1", "workers=-1: must be at least 0"),
    ("mnist_tfjob", "workers=1.5", "workers='1.5'"),
    ("mnist_tfjob", "epochs=0", "epochs=0: must be at least 1"),
    ("mnist_tfjob", "epochs=", "epochs=''"),
    ("mnist_tfjob", "data_mode=nfs", "data_mode='nfs': one of pfs, s3"),
    ("mnist_tfjob", "runner=docker", "runner='docker': one of auto, kubernetes, local"),
    ("mnist_tfjob", "push_image=maybe", "push_image='maybe': expected true or false"),
    ("mnist_tfjob", "push_image=true", "push_image=true needs serving_image"),
    ("mnist_tfjob", "serving_image=registry.example.com/ml/m:v1", "a repository only"),
    ("mnist_tfjob", "serving_image=UPPER/case", "serving_image"),
    ("mnist_tfjob", "trainer_image=not an image", "invalid image reference 'not an image'"),
    ("mnist_tfjob", "base_image=bad image", "invalid image reference 'bad image'"),
    ("mnist_tfjob", "data=bad ref!", "parameter data"),
    ("mnist_tfjob", "data=repo@", "parameter data"),
    ("mnist_tfjob", "data=@master", "parameter data"),
    ("mnist_tfjob", "data=", "parameter data"),
    ("mnist_tfjob", "namespace=", "parameter namespace"),
    ("mnist_tfjob", "model_repo=bad repo", "invalid repo name 'bad repo'"),
    ("mnist_tfjob", "model_repo=", "invalid repo name ''"),
    ("mnist_tfjob", "s3_endpoint=ftp://x", "invalid s3_endpoint 'ftp://x'"),
    ("mnist_tfjob", "s3_endpoint=localhost:30600", "invalid s3_endpoint 'localhost:30600'"),
    ("mnist_tfjob", "namespace=Bad_NS", "namespace"),
    ("mnist_tfjob", "token_secret=Not_A_Name", "token_secret"),
    ("mnist_tfjob", "registry_secret=a_b", "registry_secret"),
    ("mnist_tfjob", "commit_source=/no/such/path", "commit_source='/no/such/path'"),
    ("mnist_tfjob", "commit_source=ftp://host/x", "commit_source='ftp://host/x'"),
    ("mnist_gpu", "epochs=-3", "epochs=-3"),
    ("mnist_gpu", "batch_size=0", "batch_size=0"),
    ("mnist_gpu", "batch_size=big", "batch_size='big'"),
    ("mnist_gpu", "model_repo=a/b", "invalid repo name 'a/b'"),
    ("mnist_gpu", "workers=2", "unknown parameter 'workers'"),
    ("gpu_check", "input_data=x@y@z", "parameter input_data"),
    ("gpu_check", "output_repo=", "invalid repo name ''"),
    ("gpu_check", "epochs=1", "unknown parameter 'epochs'"),
    ("tf_distributed_sample", "runner=many", "runner='many'"),
    ("tf_distributed_sample", "output_repo=white space", "invalid repo name 'white space'"),
    ("issue_summarization", "test_fraction=1.5", "test_fraction=1.5"),
    ("issue_summarization", "test_fraction=0", "test_fraction=0"),
    ("issue_summarization", "test_fraction=half", "test_fraction='half'"),
    ("issue_summarization", "seed=x", "seed='x'"),
    ("issue_summarization", "source=/no/such.csv", "source='/no/such.csv'"),
    ("issue_summarization", "data=raw data@master", "parameter data"),
    ("issue_summarization", "epochs=-1", "epochs=-1"),
    ("issue_summarization", "push_image=yes", "push_image=true needs serving_image"),
]
BAD_USAGE = [
    # (arguments, what the one line must name)
    (["run", "nope", "--local"], "unknown pipeline 'nope'"),
    (["run", "mnist_tfjob", "--local", "--param", "epochs"], "invalid --param 'epochs'"),
    (["run", "mnist_tfjob", "--local", "--param", "=3"], "invalid --param '=3'"),
    (["watch", "mnist@master", "--pipeline", "nope", "--host", "http://127.0.0.1:9"], "'nope'"),
    (
        [
            "watch",
            "mnist@master",
            "--pipeline",
            "mnist_tfjob",
            "--host",
            "http://127.0.0.1:9",
            "--param",
            "workers=x",
        ],
        "workers='x'",
    ),  # fmt: skip
    (["watch", "bad ref!", "--pipeline", "mnist_tfjob", "--local"], "bad ref!"),
    (["finish-open", "bad ref!", "--run", "r"], "bad ref!"),
    (["trace", "not a ref!"], "not a ref!"),
    (["trace", "repo@"], "repo@"),
]
ARGPARSE = [
    ["local", "serve", "--port", "70000"],
    ["local", "serve", "--port", "-1"],
    ["local", "serve", "--s3-port", "abc"],
    ["watch", "mnist@master", "--pipeline", "mnist_tfjob", "--local", "--port", "99999"],
    ["run", "mnist_tfjob"],
    ["run", "mnist_tfjob", "--local", "--host", "http://x"],
    ["watch", "mnist@master", "--pipeline", "mnist_tfjob"],
    ["finish-open", "model@master"],
    ["nosuchcommand"],
    ["run", "mnist_tfjob", "--host", "notaurl"],
    ["watch", "mnist@master", "--pipeline", "mnist_tfjob", "--local", "--max-runs", "0"],
    ["run", "mnist_tfjob", "--local", "--data-dir", "/etc/passwd"],
    ["local", "serve", "--data-dir", "/etc/passwd", "--create"],
    ["compile", "--image-registry", "bad registry!!"],
]


@pytest.mark.parametrize(("pipeline", "param", "named"), BAD_PARAMS)
def test_a_bad_parameter_is_refused_before_anything_starts(
    pipeline, param, named, tmp_path: Path, capsys
):
    data_dir = tmp_path / "run"
    code = main(["run", pipeline, "--local", "--data-dir", str(data_dir), "--param", param])
    assert code == 2
    assert named in one_error_line(capsys)
    assert not data_dir.exists()


@pytest.mark.parametrize(("argv", "named"), BAD_USAGE)
def test_bad_usage_is_one_line_naming_the_value(argv, named, tmp_path: Path, capsys):
    data_dir = tmp_path / "run"
    extra = (
        ["--data-dir", str(data_dir)] if argv[0] in ("run", "watch") and "--local" in argv else []
    )
    assert main([*argv, *extra]) == 2
    assert named in one_error_line(capsys)
    assert not data_dir.exists()


@pytest.mark.parametrize("argv", ARGPARSE)
def test_argparse_errors_exit_2_without_a_traceback(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def test_local_serve_refuses_bad_token_files_and_a_missing_store(tmp_path: Path, capsys):
    empty = tmp_path / "token"
    empty.write_text("\n")
    store = tmp_path / "store"
    for argv, named in (
        (["--token-file", str(empty), "--create"], "is empty"),
        (["--token-file", str(tmp_path / "missing"), "--create"], "cannot read --token-file"),
        ([], f"no local Pachyderm data at {store}"),
    ):
        assert main(["local", "serve", "--port", "0", "--data-dir", str(store), *argv]) == 2
        assert named in one_error_line(capsys)
    assert not store.exists()


def test_local_serve_on_a_port_in_use_fails_in_one_line(tmp_path: Path, server: LocalPachyderm):
    port = server.address.rsplit(":", 1)[1]
    result = subprocess.run(
        [*CLI, "local", "serve", "--port", port, "--data-dir", str(tmp_path / "s"), "--create"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("kfp-pachyderm:")]
    assert f"cannot listen on 127.0.0.1:{port}" in line


def snapshot(client: Client) -> set:
    return {
        (c.commit.repo.name, c.commit.id, bool(c.finished), c.error)
        for repo in client.pfs.list_repo()
        for c in client.pfs.list_commit(repo=repo.repo)
    }


def test_server_commands_refuse_bad_input_and_change_nothing(
    client: Client, server: LocalPachyderm, tmp_path: Path, capsys, monkeypatch
):
    monkeypatch.setenv("PACHD_ADDRESS", server.address)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a")
    commit_data(client, str(data), CommitRef("images", branch="master"))
    before = snapshot(client)
    for argv, named in (
        (["trace", "images@master:/missing/path"], "/missing/path"),
        (["trace", "ghost@master"], "ghost"),
        (["trace", "images@0123456789ab4def0123456789abcdef"], "0123456789ab4def0123456789abcdef"),
        (
            ["trace", "images@master", "--openlineage", str(tmp_path / "no" / "dir.jsonl")],
            "no directory",
        ),
        (["finish-open", "images@master", "--run", "r1"], None),
        (["finish-open", "ghost@master", "--run", "r1"], "repo 'ghost' does not exist"),
        (["trace", "images@master", "--address", "notaport:xx"], "notaport:xx"),
    ):
        code = main(argv)
        if named is None:
            assert code == 0
            capsys.readouterr()
            continue
        assert code == 2, argv
        assert named in one_error_line(capsys)
    assert snapshot(client) == before
    assert not (tmp_path / "no").exists()


@pytest.mark.slow
def test_verbose_streams_every_step_log_without_colour_codes_off_a_terminal(tmp_path: Path, capsys):
    assert main(["-v", "run", "gpu_check", "--local", "--data-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "Executing task 'gpu-check'" in out and "\x1b[" not in out
    assert "full logs:" not in out
