"""Submitting to a KFP cluster with the real kfp.Client, against a KFP API test server."""

from __future__ import annotations

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm.cli.run_remote import submit_and_follow
from kfp_pachyderm.cli.watch import kfp_submitter, watch
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
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

    assert submit_and_follow("mnist_tfjob", kfp_api.host, "exp", {"workers": "3"}, sleeper=advance)
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

    assert not submit_and_follow("gpu_check", kfp_api.host, "exp", {}, sleeper=fail)


def test_watch_submits_each_commit_once_through_kfp(kfp_api: KfpApi, client: Client):
    ensure_repo(client, CommitRef("mnist"))
    with output_commit(client, CommitRef("mnist", branch="master")) as first:
        pass
    submit = kfp_submitter(kfp_api.host, "mnist_tfjob", "retrain", {"epochs": "1"})
    [(commit, run_id)] = watch(
        client, CommitRef("mnist", branch="master"), "mnist_tfjob", submit, 1
    )
    assert commit == first.commit
    run = kfp_api.runs[run_id]
    assert (
        params_of(run)["data"] == f"mnist@master={first.commit}" and params_of(run)["epochs"] == "1"
    )
    assert run["display_name"] == f"mnist_tfjob-mnist-{first.commit[:12]}"
