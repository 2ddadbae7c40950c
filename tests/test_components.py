"""Every component: its YAML is what the code compiles to, and the YAML runs under kfp.local."""

import json
import os
import sys
from pathlib import Path

import pytest
from kfp import components, dsl
from pachyderm_sdk import Client

from kfp_pachyderm.kfp.compile import (
    compile_components,
    compile_pipelines,
    component_names,
    components_dir,
    pipelines_dir,
)
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.refs import CommitRef


def without_sdk_version(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("sdkVersion:")]


def test_checked_in_yaml_matches_the_code(tmp_path: Path):
    assert component_names(), "no components found"
    for path in compile_components(tmp_path):
        checked_in = components_dir() / path.parent.name / "component.yaml"
        assert without_sdk_version(path.read_text()) == without_sdk_version(
            checked_in.read_text()
        ), f"{checked_in} is stale: run `kfp-pachyderm compile`"


def test_checked_in_pipeline_yaml_matches_the_code(tmp_path: Path):
    written = compile_pipelines(tmp_path)
    assert {p.stem for p in written} == {
        "mnist_tfjob",
        "mnist_gpu",
        "tf_distributed_sample",
        "gpu_check",
        "issue_summarization",
    }
    for path in written:
        checked_in = pipelines_dir() / path.name
        assert without_sdk_version(path.read_text()) == without_sdk_version(
            checked_in.read_text()
        ), f"{checked_in} is stale: run `kfp-pachyderm compile`"


def test_image_registry_is_settable_at_compile_time(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("KFP_PACHYDERM_IMAGE_REGISTRY", raising=False)
    (path, *_) = compile_components(tmp_path / "c", registry="registry.example.com/ml")
    assert "image: registry.example.com/ml/kfp-pachyderm-runtime:" in path.read_text()
    pipelines = compile_pipelines(tmp_path / "p", registry="registry.example.com/ml")
    compiled = [*(tmp_path / "c").rglob("*.yaml"), *pipelines]
    assert [p.name for p in compiled if "ghcr.io" in p.read_text()] == []
    compile_components(tmp_path / "default", registry="ghcr.io/kfp-pachyderm")
    compile_pipelines(tmp_path / "default-p", registry="ghcr.io/kfp-pachyderm")


def test_every_component_has_a_readme_with_inputs_outputs_rbac_and_an_example():
    for name in component_names():
        readme = (components_dir() / name / "README.md").read_text()
        for heading in ("## Inputs", "## Outputs", "## RBAC", "## Example"):
            assert heading in readme, f"{name}/README.md lacks {heading}"


def load(name: str):
    return components.load_component_from_file(str(components_dir() / name / "component.yaml"))


@pytest.mark.slow
def test_commit_data_yaml_runs_locally_and_is_idempotent(kfp_local: Client, tmp_path: Path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("x,y\n1,2\n")
    (data / "sub" / "b.bin").write_bytes(os.urandom(1000))
    commit_data = load("commit_data")

    @dsl.pipeline
    def ingest(source: str) -> str:
        task = commit_data(
            source=source,
            repo="images",
            dest_path="/raw",
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            kfp_task_id=dsl.PIPELINE_TASK_ID_PLACEHOLDER,
        )
        return task.outputs["Output"]

    first = ingest(source=str(data)).output
    info = kfp_local.pfs.inspect_commit(commit=CommitRef("images", commit=first).pfs_commit())
    record = read_provenance(info)
    assert record.step == "commit_data" and record.kfp_run_id and record.kfp_task_id
    assert record.parameters["dest_path"] == "/raw"
    assert record.image.startswith("ghcr.io/kfp-pachyderm/kfp-pachyderm-runtime:")
    assert {
        f.file.path
        for f in kfp_local.pfs.walk_file(
            file=CommitRef("images", commit=first, path="/raw").pfs_file()
        )
    } == {"/raw/", "/raw/a.csv", "/raw/sub/", "/raw/sub/b.bin"}
    assert ingest(source=str(data)).output == first  # same content: the same commit
    (data / "a.csv").write_text("x,y\n3,4\n")
    assert ingest(source=str(data)).output != first


@pytest.mark.slow
def test_commit_data_task_artifact(kfp_local: Client, tmp_path: Path):
    (tmp_path / "one.txt").write_text("hello")
    task = load("commit_data")(
        source=str(tmp_path / "one.txt"), repo="docs", dest_path="/greeting.txt"
    )
    artifact = task.outputs["commit"]
    ref = CommitRef.parse(artifact.uri)
    assert ref.commit == task.outputs["Output"] and ref.path == "/greeting.txt"
    assert artifact.metadata["artifact_type"] == "pachyderm.Commit"
    assert int(artifact.metadata["files"]) == 1 and int(artifact.metadata["bytes"]) == 5


@pytest.mark.slow
def test_commit_data_yaml_adds_by_default_and_mirrors_on_request(kfp_local: Client, tmp_path: Path):
    commit_data = load("commit_data")
    (tmp_path / "v1").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "v1" / name).write_text(name)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "a.csv").write_text("a, edited")
    commit_data(source=str(tmp_path / "v1"), repo="tables")

    def paths(commit: str) -> set[str]:
        ref = CommitRef("tables", commit=commit, path="/")
        return {f.file.path for f in kfp_local.pfs.walk_file(file=ref.pfs_file())}

    added = commit_data(source=str(tmp_path / "v2"), repo="tables").outputs["Output"]
    assert paths(added) == {"/", "/a.csv", "/b.csv"}
    mirrored = commit_data(source=str(tmp_path / "v2"), repo="tables", mirror=True)
    assert paths(mirrored.outputs["Output"]) == {"/", "/a.csv"}
    with kfp_local.pfs.pfs_file(
        CommitRef("tables", commit=mirrored.outputs["Output"], path="/a.csv").pfs_file()
    ) as f:
        assert f.read() == b"a, edited"


@pytest.mark.slow
def test_commit_data_bad_input_fails_without_side_effects(kfp_local: Client, tmp_path: Path):
    commit_data = load("commit_data")
    with pytest.raises(RuntimeError):
        commit_data(source=str(tmp_path / "missing"), repo="images")
    assert not kfp_local.pfs.repo_exists(CommitRef("images").pfs_repo())
    with pytest.raises(RuntimeError):
        commit_data(source=str(tmp_path), repo="ghost", create_repo=False)
    assert not kfp_local.pfs.repo_exists(CommitRef("ghost").pfs_repo())
    with pytest.raises(RuntimeError):
        commit_data(source=str(tmp_path), repo="bad name")


@pytest.mark.slow
def test_inspect_provenance_yaml_runs_locally(kfp_local: Client, tmp_path: Path):
    (tmp_path / "d.txt").write_text("data")
    commit_data, inspect = load("commit_data"), load("inspect_provenance")

    @dsl.pipeline
    def ingest_and_trace(source: str) -> str:
        data = commit_data(source=source, repo="raw")
        return inspect(commit=data.outputs["commit"]).outputs["Output"]

    root = ingest_and_trace(source=str(tmp_path)).output
    assert root.startswith("default/raw@")
    events = tmp_path / "lineage.jsonl"
    task = inspect(commit_ref="raw@master", openlineage_target=str(events), kfp_host="kfp.test")
    (event,) = [json.loads(line) for line in events.read_text().splitlines()]
    assert event["job"] == {"namespace": "kfp.test", "name": "commit_data", "facets": {}}
    html_text = Path(task.outputs["report_html"].path).read_text()
    assert "<svg" in html_text and root in html_text
    graph = json.loads(Path(task.outputs["graph_json"].path).read_text())
    assert graph["root"] == root and graph["nodes"][0]["record"]["step"] == "commit_data"
    assert "# Provenance of" in Path(task.outputs["report_markdown"].path).read_text()


@pytest.mark.slow
def test_start_tfjob_yaml_trains_locally_and_traces_back_to_the_data(
    kfp_local: Client, tmp_path: Path, monkeypatch
):
    from kfp_pachyderm.trainer.data import write_mnist_npz

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    write_mnist_npz(tmp_path / "data" / "mnist.npz")
    commit_data, start_tfjob, inspect = (
        load("commit_data"),
        load("start_tfjob"),
        load("inspect_provenance"),
    )

    @dsl.pipeline
    def train(source: str) -> str:
        data = commit_data(source=source, repo="mnist")
        model = start_tfjob(
            data=data.outputs["commit"],
            output_repo="model",
            workers=0,
            args="--epochs 1",
            runner="local",
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            kfp_task_id=dsl.PIPELINE_TASK_ID_PLACEHOLDER,
        )
        return inspect(commit=model.outputs["commit"]).outputs["Output"]

    root = train(source=str(tmp_path / "data")).output
    assert root.startswith("default/model@")
    info = kfp_local.pfs.inspect_commit(
        commit=CommitRef.parse(root.removeprefix("default/")).pfs_commit()
    )
    record = read_provenance(info)
    assert record.inputs[0].startswith("mnist@") and record.extra["tfjob"].startswith(
        "kubeflow/tfjob-"
    )


@pytest.mark.slow
def test_start_tfjob_yaml_gives_the_replicas_every_input_and_records_them_all(
    kfp_local: Client, tmp_path: Path, monkeypatch
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for name in ("images", "labels"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_text(name)
    commit_data, start_tfjob = load("commit_data"), load("start_tfjob")
    show_inputs = (
        "from kfp_pachyderm.tfjob.env import input_commits; print(*input_commits(), sep=chr(10))"
    )

    @dsl.pipeline
    def join(images: str, labels: str) -> str:
        first = commit_data(source=images, repo="images")
        second = commit_data(source=labels, repo="labels")
        return start_tfjob(
            data=first.outputs["commit"],
            extra_input_refs=f"labels@master={second.outputs['Output']}",
            output_repo="joined",
            workers=0,
            command=f"{sys.executable} -c '{show_inputs}'",
            args="",
            runner="local",
        ).outputs["Output"]

    commit_id = join(images=str(tmp_path / "images"), labels=str(tmp_path / "labels")).output
    out = CommitRef("joined", commit=commit_id)
    record = read_provenance(kfp_local.pfs.inspect_commit(commit=out.pfs_commit()))
    assert [CommitRef.parse(ref).repo for ref in record.inputs] == ["images", "labels"]
    with kfp_local.pfs.pfs_file(out.with_path("/logs/chief-0.log").pfs_file()) as log:
        assert log.read().decode().split("\n")[: len(record.inputs)] == record.inputs


@pytest.mark.slow
def test_train_yaml_with_gpu_runs_locally_on_the_cpu(
    kfp_local: Client, tmp_path: Path, monkeypatch
):
    from kfp_pachyderm.kfp.cluster import with_gpu
    from kfp_pachyderm.trainer.data import write_mnist_npz

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    write_mnist_npz(tmp_path / "data" / "mnist.npz")
    commit_data, train, check = load("commit_data"), load("train"), load("gpu_check")

    @dsl.pipeline
    def gpu_training(source: str) -> str:
        data = commit_data(source=source, repo="mnist")
        with_gpu(check(data=data.outputs["commit"], output_repo="gpu-check"), count=1)
        model = with_gpu(train(data=data.outputs["commit"], output_repo="model", epochs=1), count=1)
        return model.outputs["Output"]

    model = gpu_training(source=str(tmp_path / "data")).output
    with kfp_local.pfs.pfs_file(
        CommitRef("model", commit=model, path="/metrics.json").pfs_file()
    ) as f:
        assert json.loads(f.read())["device"]["gpu_count"] == 0
