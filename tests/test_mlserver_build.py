"""build_mlserver_image against the real local Pachyderm server and a real registry on
loopback: the image carries the MLServer model directory as one layer, the same commit and
base give the same digest and a rerun sends nothing, the image and the model commit record
each other, ``trace`` leads from the image to the data, and the real MLServer serves the
layer's files; the component under kfp.local writes manifests that name the exact commit."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from kfp import local
from pachyderm_sdk import Client

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.mlserver.build import build_mlserver_image
from kfp_pachyderm.mlserver.settings import MODEL_SETTINGS_FILE, SERVING_REQUIREMENTS
from kfp_pachyderm.modelimage.build import BuildOptions
from kfp_pachyderm.oci.labels import commit_of_image
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.commits import inspect_commit
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import read_tree
from kfp_pachyderm.seldon.build import build_seldon_image

from .registry import BASE_REPO, get_blob, skopeo
from .serving_venv import MLServerProcess
from .test_mlserver_serving import check_digits, mlserver_venv
from .trained_models import commit_model, fake_saved_model, trained_mnist


@pytest.fixture(autouse=True)
def _no_ambient_docker_config(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)


def unpack_last_layer(plain, repository: str, tag: str, dest: Path) -> Path:
    """The image's last layer (the model), unpacked into ``dest``."""
    manifest = json.loads(
        skopeo(
            "inspect", "--raw", "--tls-verify=false", f"docker://{plain.host}/{repository}:{tag}"
        ).stdout
    )
    blob = get_blob(plain, repository, manifest["layers"][-1]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first run creates the MLServer virtualenv
def test_build_trace_rebuild_and_serve_the_layer(
    client: Client, plain, tmp_path: Path, tmp_path_factory
):
    model_dir, arrays = trained_mnist(tmp_path_factory)
    data, model = commit_model(client, model_dir)
    base = f"{plain.host}/{BASE_REPO}:1.0"
    target = f"{plain.host}/models/mnist-v2"
    seldon = build_seldon_image(
        client, model, f"{plain.host}/models/mnist", BuildOptions(base_image=base, plain_http=True)
    )
    result = build_mlserver_image(
        client, model, target, "mnist", BuildOptions(base_image=base, plain_http=True)
    )

    assert str(result.image) == f"{target}:{model.commit}@{result.push.digest}"
    context = tmp_path / "context"
    read_tree(client, result.build_commit, context)
    assert sorted(p.name for p in context.iterdir()) == [
        "Dockerfile", "README.md", "model", "requirements.txt",
    ]  # fmt: skip
    assert (context / "requirements.txt").read_text().split() == list(SERVING_REQUIREMENTS)
    assert "Apache License 2.0" in (context / "README.md").read_text()
    settings = json.loads((context / "model" / MODEL_SETTINGS_FILE).read_text())
    assert settings["name"] == "mnist" and settings["parameters"]["version"] == model.commit
    assert result.build_commit.repo == "mlserver-builds"

    build_record = read_provenance(inspect_commit(client, result.build_commit))
    assert build_record.step == "build_mlserver_image"
    assert build_record.inputs == [f"models@{model.commit}:/model"]
    assert build_record.extra["mlserver_image"] == str(result.image)
    model_record = read_provenance(inspect_commit(client, model))
    assert model_record.extra["mlserver_image"] == str(result.image)
    assert model_record.extra["seldon_image"] == str(seldon.image), "both images recorded"
    provenance = json.loads((context / "model" / "provenance.json").read_text())
    assert "seldon_image" not in provenance["model_provenance"]["extra"], (
        "images built earlier do not change the build"
    )
    found = commit_of_image(str(result.image), plain_http=True)
    assert (found.repo, found.commit) == ("models", model.commit)
    assert f"default/mnist@{data.commit}" in trace(client, found).nodes

    offset = plain.log_offset()
    again = build_mlserver_image(
        client, model, target, "mnist", BuildOptions(base_image=base, plain_http=True)
    )
    assert again.push.digest == result.push.digest and again.reused_context
    assert again.push.sent_nothing and plain.writes_since(offset) == []

    root = unpack_last_layer(plain, "models/mnist-v2", model.commit, tmp_path / "layer")
    with MLServerProcess(mlserver_venv(), root / "mnt/models", "mnist") as server:
        check_digits(server, "mnist", model_dir, arrays, model.commit)


def test_a_bad_model_name_fails_before_anything_is_written(client: Client, plain, tmp_path):
    _, model = commit_model(client, fake_saved_model(tmp_path / "model"))
    offset = plain.log_offset()
    with pytest.raises(KfpPachydermError, match="invalid model name 'MNIST'"):
        build_mlserver_image(
            client, model, f"{plain.host}/m/x", "MNIST", BuildOptions(plain_http=True)
        )
    assert plain.writes_since(offset) == []
    assert "mlserver-builds" not in {r.repo.name for r in client.pfs.list_repo()}


def test_the_component_writes_manifests_pinned_to_the_commit(tmp_path: Path, plain, monkeypatch):
    from kfp_pachyderm.components.build_mlserver_image.component import (
        build_mlserver_image as component,
    )

    with LocalPachyderm(tmp_path / "pfs") as server:
        monkeypatch.setenv("PACHD_ADDRESS", server.address)
        monkeypatch.setenv("PACHYDERM_TOKEN_SECRET_VALUE", "never-in-a-manifest")
        client = Client.from_pachd_address(server.address)
        _, model = commit_model(client, fake_saved_model(tmp_path / "model", seed=7))
        local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
        task = component(
            model_ref=f"models@{model.commit}",
            image=f"{plain.host}/ml/digits",
            base_image=f"{plain.host}/{BASE_REPO}:1.0",
            plain_http=True,
            namespace="ml",
            kfp_run_id="run-1",
        )
        image = ImageRef.parse(task.outputs["Output"])
        assert image.tag == model.commit and image.digest
        build = CommitRef.parse(task.outputs["commit"].uri)

        def documents(output: str) -> list[dict]:
            return list(yaml.safe_load_all(Path(task.outputs[output].path).read_text()))

        (from_image,) = documents("image_inference_service")
        assert from_image["metadata"]["name"] == "digits"
        assert from_image["spec"]["predictor"]["containers"][0]["image"] == str(image)
        modelcar_runtime, from_modelcar = documents("modelcar_inference_service")
        assert modelcar_runtime["kind"] == "ServingRuntime"
        modelcar_uri = from_modelcar["spec"]["predictor"]["model"]["storageUri"]
        assert modelcar_uri == f"oci://{image.name}@{image.digest}"
        account, runtime, from_storage = documents("storage_inference_service")
        assert (account["kind"], runtime["kind"]) == ("ServiceAccount", "ServingRuntime")
        uri = from_storage["spec"]["predictor"]["model"]["storageUri"]
        assert uri == f"s3://{build.commit}.master.mlserver-builds/model"
        assert runtime["spec"]["containers"][0]["image"].endswith(image.digest) is False
        assert "@sha256:" in runtime["spec"]["containers"][0]["image"], "the base, pinned"
        server_doc, core2 = documents("seldon_core2_model")
        assert core2["spec"]["storageUri"] == uri and server_doc["kind"] == "Server"
        for document in (
            from_image,
            from_modelcar,
            account,
            runtime,
            from_storage,
            server_doc,
            core2,
        ):
            assert document["metadata"]["namespace"] == "ml"
            assert "stringData" not in document
        assert read_provenance(inspect_commit(client, build)).kfp_run_id == "run-1"
