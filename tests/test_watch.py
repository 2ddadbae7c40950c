"""watch: one submission per finished commit, never two, across restarts of the watcher; a
commit whose run failed or was cancelled runs again once on a restart, and then is reported.

The submission itself is the boundary to a KFP cluster (none runs here): the tests pass a
submitter that records what would be submitted; the subscription, the marks and the restarts
are real, against the local server."""

import threading

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm.errors import RunCancelled
from kfp_pachyderm.kfp.watcher import FAILED, MARK_PREFIX, Submitter, watch
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.refs import CommitRef

BRANCH = CommitRef("mnist", branch="master")


def new_commit(client: Client, error: bool = False) -> str:
    try:
        with output_commit(client, BRANCH) as out:
            if error:
                raise RuntimeError("failed upload")
    except RuntimeError:
        pass
    return out.commit


def recorder(outcomes: list[str] | None = None) -> tuple[Submitter, list[str]]:
    """A submitter whose runs end as ``outcomes`` says, in turn ("ok", "fail", "cancel");
    failed runs are marked the way the local submitter marks them."""
    submitted: list[str] = []
    planned = iter(outcomes or [])

    def submit(commit: CommitRef) -> str:
        submitted.append(commit.commit)
        outcome = next(planned, "ok")
        if outcome == "cancel":
            raise RunCancelled("run cancelled by SIGTERM")
        return f"{FAILED}boom" if outcome == "fail" else f"run-{len(submitted)}"

    def unfinished(commit: CommitRef, mark: str) -> str | None:
        return f"its run {mark}" if mark.startswith(FAILED) else None

    return Submitter(
        submit, unfinished, lambda c: f"kfp-pachyderm run p --param data={c}"
    ), submitted


def test_each_commit_runs_once_even_after_a_restart(client: Client, capsys):
    ensure_repo(client, CommitRef("mnist"))
    first, failed = new_commit(client), new_commit(client, error=True)
    submitter, submitted = recorder()
    assert watch(client, BRANCH, "mnist_tfjob", submitter, max_runs=1) == [(first, "run-1")]

    later: list[str] = []
    threading.Timer(0.5, lambda: later.append(new_commit(client))).start()
    assert watch(client, BRANCH, "mnist_tfjob", submitter, max_runs=1) == [(later[0], "run-2")]
    assert submitted == [first, later[0]] and failed not in submitted  # restart: no repeats
    assert f"mnist@master={failed}: not run: the commit has an error" in capsys.readouterr().out

    info = client.pfs.inspect_commit(commit=CommitRef("mnist", commit=first).pfs_commit())
    assert info.metadata[MARK_PREFIX + "mnist_tfjob"] == "run-1"
    other = watch(client, BRANCH, "mnist_gpu", submitter, max_runs=2)  # another pipeline
    assert [c for c, _ in other] == [first, later[0]]


@pytest.mark.parametrize("ending", ["fail", "cancel"])
def test_a_run_that_did_not_finish_runs_again_once_then_is_reported(
    client: Client, capsys, ending: str
):
    ensure_repo(client, CommitRef("mnist"))
    first = new_commit(client)
    submitter, submitted = recorder([ending, "fail"])
    if ending == "cancel":
        with pytest.raises(RunCancelled):
            watch(client, BRANCH, "p", submitter, max_runs=1)
    else:
        watch(client, BRANCH, "p", submitter, max_runs=1)
    capsys.readouterr()

    assert watch(client, BRANCH, "p", submitter, max_runs=1) == [(first, f"{FAILED}boom")]
    why = "its run failed: cancelled" if ending == "cancel" else "its run failed: boom"
    assert f"mnist@master={first}: {why}; running p on it again" in capsys.readouterr().out

    later: list[str] = []
    threading.Timer(0.5, lambda: later.append(new_commit(client))).start()
    assert watch(client, BRANCH, "p", submitter, max_runs=1) == [(later[0], "run-3")]
    out = capsys.readouterr().out
    assert (
        f"mnist@master={first}: skipped: its run failed: boom, after one run again; run it "
        f"with: kfp-pachyderm run p --param data=mnist@master={first}"
    ) in out
    assert submitted == [first, first, later[0]]
