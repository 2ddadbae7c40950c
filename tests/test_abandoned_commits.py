"""Off the happy path: open commits left by gone or live runs, and interrupted runs, leave
nothing blocking the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm import CommitRef, LocalPachyderm, inspect_commit
from kfp_pachyderm.cli.main import main
from kfp_pachyderm.pfs.commits import ensure_repo

from .conftest import CLI, one_error_line

RUN = ["run", "mnist_tfjob", "--local"]


def test_an_open_commit_of_a_gone_local_run_is_finished_by_the_next_writer(
    client: Client, tmp_path: Path, monkeypatch
):
    from kfp_pachyderm.pfs.commits import output_commit
    from kfp_pachyderm.pfs.provenance import ProvenanceRecord, record_provenance

    gone = subprocess.Popen(["true"])
    gone.wait()
    ensure_repo(client, CommitRef("model"))
    stuck = client.pfs.start_commit(branch=CommitRef("model", branch="master").pfs_branch())
    record = ProvenanceRecord(step="train", kfp_run_id="local-old")
    record.extra = {"local_run_pid": str(gone.pid), "local_run_host": os.uname().nodename}
    record_provenance(client, CommitRef("model", commit=stuck.id), record)
    with output_commit(client, CommitRef("model", branch="master")) as out:
        pass
    assert (
        "abandoned by a local run that is gone"
        in client.pfs.inspect_commit(commit=CommitRef("model", commit=stuck.id).pfs_commit()).error
    )
    assert out.commit != stuck.id


def test_an_open_commit_of_a_live_run_names_the_command_that_finishes_it(
    client: Client, capsys, server: LocalPachyderm, monkeypatch
):
    from kfp_pachyderm.errors import KfpPachydermError
    from kfp_pachyderm.pfs.commits import output_commit
    from kfp_pachyderm.pfs.provenance import ProvenanceRecord, record_provenance

    ensure_repo(client, CommitRef("model"))
    stuck = client.pfs.start_commit(branch=CommitRef("model", branch="master").pfs_branch())
    record_provenance(
        client,
        CommitRef("model", commit=stuck.id),
        ProvenanceRecord(step="train", kfp_run_id="run-7"),
    )
    with (
        pytest.raises(
            KfpPachydermError, match="kfp-pachyderm finish-open model@master --run run-7"
        ),
        output_commit(client, CommitRef("model", branch="master")),
    ):
        pass
    monkeypatch.setenv("PACHD_ADDRESS", server.address)
    assert main(["finish-open", "model@master", "--run", "other"]) == 2
    assert "opened by run run-7" in one_error_line(capsys)
    assert main(["finish-open", "model@master", "--run", "run-7"]) == 0
    assert "run-7" in inspect_commit(client, CommitRef("model", commit=stuck.id)).error


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_an_interrupted_run_leaves_nothing_blocking_the_next(how: str, tmp_path: Path):
    data_dir = tmp_path / "run"
    command = [*CLI, *RUN, "--data-dir", str(data_dir), "--param", "epochs=1"]
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    for line in first.stdout:
        if "start-tfjob: started" in line:
            break
    time.sleep(3)  # mid-training
    os.killpg(first.pid, getattr(signal, how))
    rest, _ = first.communicate(timeout=120)
    if how == "SIGINT":
        assert first.returncode == 130, rest[-2000:]
        assert "cancelled" in rest and "Traceback" not in rest
    second = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "result: pfs://default/mnist-model@" in second.stdout
