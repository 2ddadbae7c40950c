"""Seed 004 end to end: the issue-summarization pipeline under kfp.local on the real local
server, its retrain after a data change (which datums reran, the lineage of both images in a
real registry), the real Seldon microservice serving a title, and bad CSVs refused first."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from kfp_pachyderm.pipelines.issue_summarization import issue_summarization
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm import CommitRef, commit_data, inspect_commit, read_provenance, read_tree, trace
from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.oci.labels import commit_or_image
from kfp_pachyderm.oci.media import DOCKER
from kfp_pachyderm.oci.registry import PLAIN_HTTP_ENV, RegistryClient
from kfp_pachyderm.summarizer.data import read_issues
from kfp_pachyderm.summarizer.stages import write_demo_shards, write_issues

from .conftest import free_port, ready_client
from .registry import Registry, push_synthetic, require_registry_tools, synthetic_image
from .test_seldon_serving import Microservice, seldon_venv

pytestmark = pytest.mark.slow

SHARDS = 4


def stage_record(client: Client, repo: str):
    return read_provenance(inspect_commit(client, CommitRef(repo, branch="master")))


def lineage_repos(client: Client, ref: CommitRef) -> dict[str, str]:
    """repo -> commit of every node upstream of ``ref``."""
    return {node.repo: node.commit for node in trace(client, ref).nodes.values()}


def files(client: Client, repo: str, tmp_path: Path, name: str) -> dict[str, bytes]:
    dest = tmp_path / name
    read_tree(client, CommitRef(repo, branch="master", path="/"), dest)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


@pytest.mark.timeout(1200)
def test_the_pipeline_runs_retrains_on_new_data_and_both_images_trace_to_their_data(
    kfp_local: Client, tmp_path: Path, tmp_path_factory, monkeypatch
):
    require_registry_tools()
    monkeypatch.setenv("KFP_RUN_ID", "run-v1")  # as use_pachyderm sets it from the pod
    data = tmp_path / "data"
    write_demo_shards(data, shards=SHARDS, limit=200)
    raw_v1 = commit_data(kfp_local, str(data), CommitRef("raw_data", branch="master")).ref
    with Registry(tmp_path_factory.mktemp("registry")) as registry:
        monkeypatch.setenv(PLAIN_HTTP_ENV, registry.host)
        push_synthetic(
            RegistryClient(registry.host, plain_http=True),
            "base/seldon",
            "1",
            synthetic_image(DOCKER),
        )
        arguments = dict(
            epochs=1,
            serving_image=f"{registry.host}/ml/issues",
            push_image=True,
            base_image=f"{registry.host}/base/seldon:1",
            token_secret="",
        )
        issue_summarization(**arguments)
        model_v1 = inspect_commit(kfp_local, CommitRef("train", branch="master")).commit.id
        image_v1 = f"{registry.host}/ml/issues:{model_v1}"
        split_v1 = files(kfp_local, "split", tmp_path, "split-v1")
        for repo in ("split", "pre_process", "train", "build"):
            assert stage_record(kfp_local, repo).kfp_run_id == "run-v1", repo
        assert stage_record(kfp_local, "split").extra["datums_ran"] == str(SHARDS)

        changed = data / "issues-01.csv"
        rows = read_issues(changed)
        rows[0] = (rows[0][0], rows[0][1] + " (edited)", rows[0][2] + " An edited body.")
        write_issues(changed, rows)
        raw_v2 = commit_data(kfp_local, str(data), CommitRef("raw_data", branch="master")).ref
        monkeypatch.setenv("KFP_RUN_ID", "run-v2")
        issue_summarization(**arguments)

        split_v2 = files(kfp_local, "split", tmp_path, "split-v2")
        changed_split_files = [f for f in split_v2 if split_v1.get(f) != split_v2[f]]
        assert len(changed_split_files) == 1 and changed_split_files[0].endswith("issues-01.csv")
        assert stage_record(kfp_local, "split").extra == {"datums_ran": "1", "datums_carried": "3"}
        pre_process = stage_record(kfp_local, "pre_process").extra
        assert pre_process["datums_ran"] == "1"
        model_v2 = inspect_commit(kfp_local, CommitRef("train", branch="master")).commit.id
        assert model_v2 != model_v1
        image_v2 = f"{registry.host}/ml/issues:{model_v2}"

        new = lineage_repos(kfp_local, commit_or_image(image_v2, plain_http=True))
        old = lineage_repos(kfp_local, commit_or_image(image_v1, plain_http=True))
    assert new["raw_data"] == raw_v2.commit and old["raw_data"] == raw_v1.commit
    assert {"split", "pre_process", "train", "raw_data"} <= set(new)
    assert new["train"] == model_v2 and old["train"] == model_v1
    build = stage_record(kfp_local, "build")
    assert any(model_v2 in ref for ref in build.inputs)


@pytest.mark.timeout(1800)  # the first run creates the serving virtualenv
def test_the_seldon_microservice_serves_a_title_for_issue_text(kfp_local: Client, tmp_path: Path):
    venv = seldon_venv()
    data = tmp_path / "data"
    write_demo_shards(data, shards=2, limit=120)
    commit_data(kfp_local, str(data), CommitRef("raw_data", branch="master"))
    issue_summarization(epochs=2, token_secret="")
    context = tmp_path / "context"
    read_tree(kfp_local, CommitRef("build", branch="master", path="/"), context)
    model_commit = inspect_commit(kfp_local, CommitRef("train", branch="master")).commit.id

    service = Microservice(venv, context)
    try:
        service.wait_ready()
        texts = ["The installer crashes when the path has a space in it", "Add a dark theme"]
        response = requests.post(
            service.url("/api/v1.0/predictions"), json={"data": {"ndarray": texts}}, timeout=60
        )
        assert response.status_code == 200, response.text
        body = response.json()
        titles = body["data"]["ndarray"]
        assert len(titles) == 2 and all(isinstance(t, str) for t in titles)
        assert body["meta"]["tags"]["model_commit"] == model_commit
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"issue_url,body\nhttps://x,text\n", "issue_title"),
        (b"", "empty"),
        (b"issue_url,issue_title,body\nhttps://x,Caf\xe9,text\n", "UTF-8"),
        (b"issue_url,issue_title,body\n", "no data rows"),
    ],
)
def test_a_bad_csv_is_refused_in_one_line_before_anything_starts(
    tmp_path: Path, content: bytes, problem: str
):
    bad = tmp_path / "issues.csv"
    bad.write_bytes(content)
    data_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "kfp_pachyderm.cli", "run", "issue_summarization", "--local",
         "--data-dir", str(data_dir), "--param", f"source={bad}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and problem in lines[0]
    assert not data_dir.exists()


@pytest.mark.timeout(900)
def test_watch_local_retrains_once_per_new_data_commit_and_never_twice(tmp_path: Path):
    port = free_port()
    command = [
        sys.executable, "-m", "kfp_pachyderm.cli", "watch", "raw_data@master",
        "--pipeline", "issue_summarization", "--local", "--data-dir", str(tmp_path / "run"),
        "--port", str(port), "--param", "epochs=1",
    ]  # fmt: skip
    watcher = subprocess.Popen(
        [*command, "--max-runs", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        client = ready_client(f"grpc://127.0.0.1:{port}", timeout=120)
        data = tmp_path / "data"
        write_demo_shards(data, shards=2, limit=80)
        first = commit_data(client, str(data), CommitRef("raw_data", branch="master")).ref
        wait_for_head(client, "train", lambda record: record.inputs, timeout=300)
        rows = read_issues(data / "issues-00.csv")
        write_issues(data / "issues-00.csv", rows[1:])
        second = commit_data(client, str(data), CommitRef("raw_data", branch="master")).ref
        output, _ = watcher.communicate(timeout=600)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, output[-3000:]
    runs = [line for line in output.splitlines() if line.startswith("raw_data@master=")]
    assert [line.split(":")[0] for line in runs] == [
        str(first.with_path(None)),
        str(second.with_path(None)),
    ]

    again = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = ready_client(f"grpc://127.0.0.1:{port}", timeout=120)
        time.sleep(5)  # the existing commits are replayed to the watcher at once
        models = list(client.pfs.list_commit(repo=CommitRef("train").pfs_repo()))
    finally:
        again.terminate()
        output, _ = again.communicate(timeout=60)
    assert not [line for line in output.splitlines() if line.startswith("raw_data@master=")]
    assert len([c for c in models if read_provenance(c)]) == 2  # besides the empty first commit


def wait_for_head(client: Client, repo: str, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            record = read_provenance(inspect_commit(client, CommitRef(repo, branch="master")))
            if record is not None and ready(record):
                return
        except KfpPachydermError:
            pass
        time.sleep(1)
    pytest.fail(f"no commit on {repo}@master within {timeout} s")


@pytest.mark.timeout(900)
def test_native_provenance_lets_pachyderm_itself_link_the_stages(kfp_local: Client, tmp_path: Path):
    data = tmp_path / "data"
    write_demo_shards(data, shards=SHARDS, limit=120)
    commit_data(kfp_local, str(data), CommitRef("raw_data", branch="master"))
    issue_summarization(epochs=1, token_secret="", native_provenance=True)

    changed = data / "issues-02.csv"
    rows = read_issues(changed)
    write_issues(changed, rows[1:])
    raw = commit_data(kfp_local, str(data), CommitRef("raw_data", branch="master")).ref
    issue_summarization(epochs=1, token_secret="", native_provenance=True)

    for repo, upstream in (
        ("split", "raw_data"),
        ("pre_process", "split"),
        ("train", "pre_process"),
    ):
        info = inspect_commit(kfp_local, CommitRef(repo, branch="master"))
        assert info.commit.id == raw.commit, f"{repo} is in the data commit's commit set"
        assert [(c.repo.name, c.id) for c in info.direct_provenance] == [(upstream, raw.commit)]
        assert read_provenance(info).extra["native_provenance"].startswith("native: ")
    commit_set = kfp_local.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=raw.commit))
    in_set = {c.commit.repo.name for c in commit_set}
    assert {"raw_data", "split", "pre_process", "train"} <= in_set
    assert stage_record(kfp_local, "split").extra["datums_ran"] == "1"
