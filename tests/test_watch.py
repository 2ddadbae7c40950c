"""watch: one submission per finished commit, never two, across restarts of the watcher.

The submission itself is the boundary to a KFP cluster (none runs here): the test passes a
function that records what would be submitted; the subscription, the marks and the restart
are real, against the local server."""

import threading

from pachyderm_sdk import Client

from kfp_pachyderm.cli.watch import MARK_PREFIX, watch
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.refs import CommitRef


def new_commit(client: Client, error: bool = False) -> str:
    try:
        with output_commit(client, CommitRef("mnist", branch="master")) as out:
            if error:
                raise RuntimeError("failed upload")
    except RuntimeError:
        pass
    return out.commit


def test_each_commit_runs_once_even_after_a_restart(client: Client):
    ensure_repo(client, CommitRef("mnist"))
    first, failed = new_commit(client), new_commit(client, error=True)
    submitted: list[str] = []

    def submit(commit: CommitRef) -> str:
        submitted.append(commit.commit)
        return f"run-{len(submitted)}"

    branch = CommitRef("mnist", branch="master")
    assert watch(client, branch, "mnist_tfjob", submit, max_runs=1) == [(first, "run-1")]

    later: list[str] = []
    threading.Timer(0.5, lambda: later.append(new_commit(client))).start()
    assert watch(client, branch, "mnist_tfjob", submit, max_runs=1) == [(later[0], "run-2")]
    assert submitted == [first, later[0]] and failed not in submitted  # restart: no repeats

    info = client.pfs.inspect_commit(commit=CommitRef("mnist", commit=first).pfs_commit())
    assert info.metadata[MARK_PREFIX + "mnist_tfjob"] == "run-1"
    other = watch(client, branch, "mnist_gpu", submit, max_runs=2)  # another pipeline: its own runs
    assert [c for c, _ in other] == [first, later[0]]
