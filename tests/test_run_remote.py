"""Submitting to a KFP cluster with the real kfp.Client, against a KFP API test server."""

from __future__ import annotations

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm.cli.run_remote import submit_and_follow
from kfp_pachyderm.cli.targets import resolve_target
from kfp_pachyderm.cli.watch import kfp_submitter
from kfp_pachyderm.kfp.watcher import MARK_PREFIX, SUBMITTING, watch
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.provenance import edit_metadata
from kfp_pachyderm.pfs.refs import CommitRef

from .kfp_api import KfpApi


@pytest.fixture
def kfp_api():
    api = KfpApi()
    yield api
    api.stop()


def params_of(run: dict) -> dict:
    return {k: v for k, v in run["runtime_config"]["parameters"].items()}


def test_submit_follows_the_run_to_its_end(kfp_api: KfpApi, capsys):
    states = iter(["RUNNING", "RUNNING", "SUCCEEDED"])

    def advance(_seconds: float) -> None:
        (run_id,) = kfp_api.runs
        kfp_api.set_state(run_id, next(states))

    assert submit_and_follow(
        resolve_target("mnist_tfjob"), kfp_api.host, "exp", {"workers": "3"}, sleeper=advance
    )
    (run,) = kfp_api.runs.values()
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "mnist-tfjob"
    assert params_of(run)["workers"] == "3"
    assert [e["display_name"] for e in kfp_api.experiments.values()] == ["exp"]
    out = capsys.readouterr().out
    assert "PENDING" in out and "RUNNING" in out and "SUCCEEDED" in out


def test_a_failed_run_is_reported(kfp_api: KfpApi):
    def fail(_seconds: float) -> None:
        (run_id,) = kfp_api.runs
        kfp_api.set_state(run_id, "FAILED")

    assert not submit_and_follow(resolve_target("gpu_check"), kfp_api.host, "exp", {}, sleeper=fail)


def test_watch_submits_each_commit_once_through_kfp(kfp_api: KfpApi, client: Client):
    ensure_repo(client, CommitRef("mnist"))
    with output_commit(client, CommitRef("mnist", branch="master")) as first:
        pass
    target = resolve_target("mnist_tfjob")
    submit = kfp_submitter(kfp_api.host, target, target.spec(), "retrain", {"epochs": "1"})
    [(commit, run_id)] = watch(
        client, CommitRef("mnist", branch="master"), "mnist_tfjob", submit, 1
    )
    assert commit == first.commit
    run = kfp_api.runs[run_id]
    assert (
        params_of(run)["data"] == f"mnist@master={first.commit}" and params_of(run)["epochs"] == "1"
    )
    assert run["display_name"] == f"mnist_tfjob-mnist-{first.commit[:12]}"


@pytest.mark.slow
def test_a_restarted_watcher_finds_its_run_and_reruns_a_failed_one_once(
    kfp_api: KfpApi, client: Client, capsys
):
    ensure_repo(client, CommitRef("mnist"))
    branch = CommitRef("mnist", branch="master")
    with output_commit(client, branch) as first:
        pass
    with output_commit(client, branch) as second:
        pass
    target = resolve_target("mnist_tfjob")
    submitter = kfp_submitter(kfp_api.host, target, target.spec(), "retrain", {})
    [(_, run_one), (_, run_two)] = watch(client, branch, "mnist_tfjob", submitter, 2)

    key = MARK_PREFIX + "mnist_tfjob"
    edit_metadata(client, branch.at(first.commit), {key: SUBMITTING})  # killed while submitting
    kfp_api.set_state(run_two, "FAILED")
    with output_commit(client, branch) as third:
        pass
    runs = watch(client, branch, "mnist_tfjob", submitter, 2)
    assert [commit for commit, _ in runs] == [second.commit, third.commit]
    assert len(kfp_api.runs) == 4  # the first commit's run was found, not made again
    out = capsys.readouterr().out
    assert f"its run {run_two} ended failed; running mnist_tfjob on it again" in out
    info = client.pfs.inspect_commit(commit=branch.at(first.commit).pfs_commit())
    assert info.metadata[key] == SUBMITTING  # found, nothing to do: the run is still going
    assert run_one in kfp_api.runs
