"""The pipelines under kfp.local against the local server: results, logs, caching, cleanup."""

import os
from pathlib import Path

import pytest
from kfp import dsl, local
from kfp_pachyderm.pipelines import PIPELINES
from pachyderm_sdk import Client

from kfp_pachyderm.kfp.pipeline_spec import written_by
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.steps.component import pfs_step
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def exit_handler_branches(spec: dict) -> list[str]:
    """The branches the compiled pipeline's exit handler finishes."""
    exit_tasks = [
        task
        for task in spec["root"]["dag"]["tasks"].values()
        if task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED"
    ]
    assert [t["componentRef"]["name"] for t in exit_tasks] == ["comp-finish-open-commits"]
    branches = exit_tasks[0]["inputs"]["parameters"]["branches"]["runtimeValue"]["constant"]
    return branches.split(",")


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_pipeline_finishes_its_spec_outputs_whatever_the_run_ends_with(name: str):
    import yaml
    from kfp_pachyderm.pipelines import SPECS

    from .conftest import REPO_ROOT

    spec = next(yaml.safe_load_all((REPO_ROOT / "pipelines" / f"{name}.yaml").read_text()))
    outputs = SPECS[name].outputs
    expected = [
        f"{{{{$.inputs.parameters['pipelinechannel--{o.parameter}']}}}}@{o.branch}"
        if o.parameter
        else f"{o.repo}@{o.branch}"
        for o in outputs
    ]
    assert exit_handler_branches(spec) == expected
    assert SPECS[name].result in outputs


@pfs_step(output_repo="scores", output_branch="dev")
def score(raw, out):
    """A step writing a branch other than the default one."""
    from pathlib import Path

    (Path(out) / "score.txt").write_text("1")


DEV_OUTPUTS = (written_by(score),)


@dsl.pipeline
def scoring(data: str = "raw@master", token_secret: str = ""):
    from kfp_pachyderm.pipelines.common_tasks import finish_on_exit

    with finish_on_exit(DEV_OUTPUTS, token_secret):
        score(raw=data)


def test_the_exit_handler_finishes_an_open_commit_on_the_branch_its_step_writes(
    cluster, tmp_path: Path
):
    import yaml

    from kfp_pachyderm.kfp.compile import compile_pipeline, load_component
    from kfp_pachyderm.pfs.provenance import record_provenance

    compiled = compile_pipeline(scoring, tmp_path / "scoring.yaml").read_text()
    [branch] = exit_handler_branches(next(yaml.safe_load_all(compiled)))
    assert branch == "scores@dev"
    _, client = cluster
    ensure_repo(client, CommitRef("scores"))
    stuck = client.pfs.start_commit(branch=CommitRef.parse(branch).pfs_branch())
    record = ProvenanceRecord(step="score", kfp_run_id="run-9")
    record_provenance(client, CommitRef("scores", commit=stuck.id), record)
    finish = load_component("finish_open_commits")
    assert finish(branches=branch, kfp_run_id="run-9").output == 1
    info = inspect_commit(client, CommitRef("scores", commit=stuck.id))
    assert "KFP run run-9 ended before step score finished" in info.error


def test_loading_a_component_for_a_registry_leaves_the_environment_as_it_was(monkeypatch):
    from kfp_pachyderm.kfp.compile import load_component
    from kfp_pachyderm.kfp.images import DEFAULT_REGISTRY, REGISTRY_ENV

    for before in (None, "registry.example.com/before"):
        if before is None:
            monkeypatch.delenv(REGISTRY_ENV, raising=False)
        else:
            monkeypatch.setenv(REGISTRY_ENV, before)
        try:
            component = load_component("gpu_check", "registry.example.com/ml")
            assert component.component_spec.implementation.container.image.startswith(
                "registry.example.com/ml/"
            )
            assert os.environ.get(REGISTRY_ENV) == before
        finally:
            load_component("gpu_check", DEFAULT_REGISTRY)  # as the other tests expect it
        assert os.environ.get(REGISTRY_ENV) == before


@pytest.mark.slow
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
