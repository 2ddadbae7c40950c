"""The pipelines under kfp.local against the local server: results, logs, caching, cleanup."""

from pathlib import Path

import pytest
from kfp import local
from kfp_pachyderm.pipelines import PIPELINES
from pachyderm_sdk import Client

from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.trainer.data import digits_as_mnist, write_mnist_npz


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch):
    """The local server and kfp.local, with caching, as `kfp-pachyderm run --local` sets up."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with LocalPachyderm(tmp_path / "pfs", s3_port=0) as server:
        monkeypatch.setenv("PACHD_ADDRESS", server.address)
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(tmp_path / "kfp"),
            enable_caching=True,
        )
        yield server, Client.from_pachd_address(server.address)


def head(client: Client, repo: str) -> str:
    return inspect_commit(client, CommitRef(repo, branch="master")).commit.id


def test_tf_distributed_sample_versions_every_replicas_log(cluster, tmp_path: Path):
    server, client = cluster
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "blah.txt").write_text("trigger")
    commit_data(client, str(tmp_path / "in"), CommitRef("sample_input", branch="master"))
    PIPELINES["tf_distributed_sample"](runner="local", token_secret="")
    logs = CommitRef("tf_sample_logs", commit=head(client, "tf_sample_logs"), path="/logs")
    names = {f.file.path for f in client.pfs.list_file(file=logs.pfs_file())}
    assert names == {f"/logs/{r}.log" for r in ("chief-0", "worker-0", "worker-1", "ps-0", "ps-1")}
    with client.pfs.pfs_file(logs.with_path("/logs/worker-1.log").pfs_file()) as f:
        text = f.read().decode()
    assert "replica worker-1" in text and '"ps": [' in text
    assert "input sample_input: /blah.txt" in text


def test_second_run_reuses_cached_steps_and_new_data_reruns_them(cluster, tmp_path: Path):
    server, client = cluster
    arrays = digits_as_mnist()
    write_mnist_npz(tmp_path / "v1" / "mnist.npz", arrays)
    commit_data(client, str(tmp_path / "v1"), CommitRef("mnist", branch="master"))
    run = PIPELINES["mnist_gpu"]
    run(epochs=1, token_secret="")
    first = head(client, "mnist-model-gpu")
    run(epochs=1, token_secret="")
    assert head(client, "mnist-model-gpu") == first  # train was cached: no new model commit

    arrays["y_train"] = arrays["y_train"][::-1].copy()
    write_mnist_npz(tmp_path / "v2" / "mnist.npz", arrays)
    commit_data(client, str(tmp_path / "v2"), CommitRef("mnist", branch="master"))
    run(epochs=1, token_secret="")
    assert head(client, "mnist-model-gpu") != first


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_pipeline_finishes_its_output_commits_whatever_the_run_ends_with(name: str):
    import yaml

    from .conftest import REPO_ROOT

    spec = next(yaml.safe_load_all((REPO_ROOT / "pipelines" / f"{name}.yaml").read_text()))
    exit_tasks = [
        task
        for task in spec["root"]["dag"]["tasks"].values()
        if task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED"
    ]
    assert [t["componentRef"]["name"] for t in exit_tasks] == ["comp-finish-open-commits"]
    branches = exit_tasks[0]["inputs"]["parameters"]["branches"]["runtimeValue"]["constant"]
    assert all(branch.endswith("@master") for branch in branches.split(","))
    if name == "issue_summarization":  # its stages write fixed repos, as in the seed
        assert branches == "split@master,pre_process@master,train@master,build@master"
    else:
        assert "pipelinechannel--" in branches


def test_exit_handler_finishes_a_commit_its_run_left_open(cluster):
    _, client = cluster
    ensure_repo(client, CommitRef("orphans"))
    stuck = client.pfs.start_commit(branch=CommitRef("orphans", branch="master").pfs_branch())
    record = ProvenanceRecord(step="train", kfp_run_id="run-42")
    from kfp_pachyderm.pfs.provenance import record_provenance

    record_provenance(client, CommitRef("orphans", commit=stuck.id), record)
    from kfp_pachyderm.kfp.compile import load_component

    finish = load_component("finish_open_commits")
    assert finish(branches="orphans@master, missing@master", kfp_run_id="other-run").output == 0
    assert finish(branches="orphans@master", kfp_run_id="run-42").output == 1
    info = inspect_commit(client, CommitRef("orphans", commit=stuck.id))
    assert "KFP run run-42 ended before step train finished" in info.error
