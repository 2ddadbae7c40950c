"""The command line: exit codes and output scripts can rely on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pachyderm_sdk import Client

from .conftest import CLI


@pytest.mark.slow
def test_the_main_job_trains_traces_and_predicts(tmp_path: Path):
    result = subprocess.run(
        [*CLI, "run", "mnist_tfjob", "--local", "--data-dir", str(tmp_path), "--param", "epochs=1"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "result: pfs://default/mnist-model@" in out
    assert "step start_tfjob" in out and "<- default/mnist@" in out and "step commit_data" in out
    predicted = [line for line in out.splitlines() if line.startswith("prediction from")]
    assert len(predicted) == 1
    assert "  start-tfjob: success in" in out and "executor_input" not in out
    [log] = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("full logs:")]
    assert "executor_input" in Path(log).read_text()


@pytest.mark.slow
def test_run_rejects_unknown_pipelines_and_parameters(tmp_path: Path):
    result = subprocess.run(
        [*CLI, "run", "nope", "--local", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "unknown pipeline 'nope'" in result.stderr
    result = subprocess.run(
        [*CLI, "run", "gpu_check", "--local", "--data-dir", str(tmp_path), "--param", "epochs"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "invalid --param 'epochs'" in result.stderr


def test_local_serve_prints_its_address_and_serves(server_process):
    server = server_process()
    assert Client.from_pachd_address(server.address).get_version().minor == 12


def test_bad_usage_exits_2(tmp_path: Path):
    result = subprocess.run([*CLI, "local", "serve", "--port", "x"], capture_output=True, text=True)
    assert result.returncode == 2 and "'x' is not a port number (0 to 65535)" in result.stderr


def test_the_help_lists_the_pipelines_their_specs_declare(capsys):
    from kfp_pachyderm.pipelines import SPECS

    from kfp_pachyderm.cli.main import build_parser

    for command in ("run", "watch", "compile"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert f"a built-in pipeline ({', '.join(SPECS)}) or your own" in shown


COPYING = """
from kfp import dsl

from kfp_pachyderm import pfs_step


@pfs_step(output_repo="copied")
def copy(raw, out):
    import shutil

    shutil.copytree(raw, out, dirs_exist_ok=True)


@dsl.pipeline
def copying(data: str = "raw@master"):
    copy(raw=data)
"""


def test_compile_for_a_registry_leaves_the_environment_as_it_was(tmp_path: Path, monkeypatch):
    import os

    from kfp_pachyderm.cli.main import main
    from kfp_pachyderm.kfp.images import REGISTRY_ENV

    (tmp_path / "copying.py").write_text(COPYING)
    output = tmp_path / "copying.yaml"
    for before in (None, "registry.example.com/before"):
        if before is None:
            monkeypatch.delenv(REGISTRY_ENV, raising=False)
        else:
            monkeypatch.setenv(REGISTRY_ENV, before)
        argv = ["compile", f"{tmp_path / 'copying.py'}:copying", "--output", str(output)]
        assert main([*argv, "--image-registry", "registry.example.com/ml"]) == 0
        assert "image: registry.example.com/ml/kfp-pachyderm-runtime:" in output.read_text()
        assert os.environ.get(REGISTRY_ENV) == before
