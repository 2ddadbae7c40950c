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
from kfp_pachyderm.pfs.commits import WAIT_ENV, ensure_repo

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

    monkeypatch.setenv(WAIT_ENV, "0.3")  # how long a writer waits for the live run's commit
    ensure_repo(client, CommitRef("model"))
    stuck = client.pfs.start_commit(branch=CommitRef("model", branch="master").pfs_branch())
    record_provenance(
        client,
        CommitRef("model", commit=stuck.id),
        ProvenanceRecord(step="train", kfp_run_id="run-7"),
    )
    with (
        pytest.raises(
            KfpPachydermError,
            match="still open after waiting 0 s .*kfp-pachyderm finish-open model@master --run "
            "run-7",
        ),
        output_commit(client, CommitRef("model", branch="master")),
    ):
        pass
    monkeypatch.setenv("PACHD_ADDRESS", server.address)
    assert main(["finish-open", "model@master", "--run", "other"]) == 2
    assert "opened by run run-7" in one_error_line(capsys)
    assert main(["finish-open", "model@master", "--run", "run-7"]) == 0
    assert "run-7" in inspect_commit(client, CommitRef("model", commit=stuck.id)).error


def test_a_second_writer_waits_for_a_live_runs_commit_and_writes_after_it(
    client: Client, caplog, tmp_path: Path
):
    """Two runs of one step at once: the second waits its turn, as Pachyderm queues jobs."""
    import threading

    from kfp_pachyderm.pfs.commits import output_commit
    from kfp_pachyderm.pfs.provenance import ProvenanceRecord
    from kfp_pachyderm.pfs.transfer import put_tree

    ensure_repo(client, CommitRef("model"))
    branch = CommitRef("model", branch="master")
    opened, release = threading.Event(), threading.Event()

    def first_run(folder: Path) -> None:
        record = ProvenanceRecord(step="train", kfp_run_id="run-1")
        with output_commit(client, branch, provenance=record) as out:
            put_tree(client, out.pfs_commit(), folder)
            opened.set()
            release.wait(30)

    (tmp_path / "first.txt").write_text("first")
    writer = threading.Thread(target=first_run, args=(tmp_path,))
    writer.start()
    assert opened.wait(30)
    threading.Timer(1.5, release.set).start()
    started = time.monotonic()
    with output_commit(client, branch, provenance=ProvenanceRecord(kfp_run_id="run-2")) as out:
        pass
    writer.join(30)
    assert time.monotonic() - started >= 1.0  # it waited for the first run to finish
    assert "waiting for model@" in caplog.text and "run-1" in caplog.text
    second = inspect_commit(client, out.ref)
    parent = inspect_commit(client, CommitRef("model", commit=second.parent_commit.id))
    assert parent.finished and not parent.error  # the first run's commit, finished by it
    assert not second.error and second.finished


def _open_commit_of_a_gone_writer(client: Client, namespace: str) -> CommitRef:
    """scores@master's head, left open by a process of this host, in PID ``namespace``,
    that is over."""
    from kfp_pachyderm.pfs.commits import WRITER_KEY
    from kfp_pachyderm.pfs.provenance import ProvenanceRecord, edit_metadata, record_provenance

    gone = subprocess.Popen(["true"])
    gone.wait()
    ensure_repo(client, CommitRef("scores"))
    stuck = client.pfs.start_commit(branch=CommitRef("scores", branch="master").pfs_branch())
    ref = CommitRef("scores", commit=stuck.id)
    record_provenance(client, ref, ProvenanceRecord(step="score", kfp_run_id="run-9"))
    edit_metadata(client, ref, {WRITER_KEY: f"{os.uname().nodename}|{namespace}|{gone.pid}"})
    return ref


def test_an_open_commit_whose_writer_process_is_gone_is_recovered_at_once(client: Client):
    """A kfp.local script killed with kill -9 left its commit open; its process is gone on
    this host, so the next writer finishes it without waiting."""
    from kfp_pachyderm.pfs.commits import output_commit

    ref = _open_commit_of_a_gone_writer(client, os.readlink("/proc/self/ns/pid"))
    started = time.monotonic()
    with output_commit(client, CommitRef("scores", branch="master")):
        pass
    assert time.monotonic() - started < 5
    assert "abandoned by a local run that is gone" in inspect_commit(client, ref).error


def test_a_writer_in_another_pid_namespace_is_never_judged_gone(client: Client, monkeypatch):
    """A process of the same host name but another PID namespace (a container on a
    host-network node) may be alive: its commit is waited for, not finished."""
    from kfp_pachyderm.errors import UsageError
    from kfp_pachyderm.pfs.commits import output_commit

    monkeypatch.setenv(WAIT_ENV, "0.2")
    ref = _open_commit_of_a_gone_writer(client, "pid:[1]")
    with (
        pytest.raises(UsageError, match="still open after waiting"),
        output_commit(client, CommitRef("scores", branch="master")),
    ):
        pass
    assert not inspect_commit(client, ref).error


def test_the_wait_is_refused_when_it_is_no_number(client: Client, monkeypatch):
    from kfp_pachyderm.errors import UsageError
    from kfp_pachyderm.pfs.commits import output_commit

    monkeypatch.setenv(WAIT_ENV, "soon")
    ensure_repo(client, CommitRef("model"))
    with (
        pytest.raises(UsageError, match=f"{WAIT_ENV}='soon': a number of seconds"),
        output_commit(client, CommitRef("model", branch="master")),
    ):
        pass


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
