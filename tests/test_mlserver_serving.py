"""Serving with MLServer: the model directory write_model_dir writes, served by the real
``mlserver start`` (in its own virtualenv with the MLServer image's requirements) over the Open
Inference Protocol (V2), for the library's digit model and its issue summarization model; and
the same directory committed to Pachyderm, fetched through the S3 gateway by KServe's own
storage initializer code (``kserve-storage``), and served from there.

One cached virtualenv (see tests/serving_venv.py) holds the image's requirements and
``kserve-storage``; creating it downloads TensorFlow and takes a few minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
from pachyderm_sdk import Client

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.mlserver.settings import (
    IMPLEMENTATION,
    MODEL_SETTINGS_FILE,
    MODEL_URI,
    RUNTIME_FILE,
    SERVING_REQUIREMENTS,
    model_settings,
    runtime_source,
    write_model_dir,
)
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.s3 import bucket_name
from kfp_pachyderm.pfs.transfer import put_tree, read_tree
from kfp_pachyderm.seldon.context import MODEL_CLASS_FILE, model_class_source
from kfp_pachyderm.summarizer.model import summarize

from .conftest import REPO_ROOT
from .serving_venv import MLServerProcess, serving_venv
from .trained_models import reference_probabilities, trained_mnist, trained_summarizer

IMAGE_DIR = REPO_ROOT / "images/mlserver"
TOKEN = "mlserver-test-token-5f0c"
COMMIT = "0123456789ab4def0123456789abcdef"


def mlserver_venv() -> Path:
    """The MLServer image's requirements plus KServe's storage initializer, in one venv (see
    tests/serving_venv.py)."""
    return serving_venv("mlserver")


def provenance(commit: str, repo: str = "models") -> dict:
    return {"model": {"commit": commit, "repo": repo, "uri": f"pfs://{repo}@{commit}"}}


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def infer(server: MLServerProcess, name: str, request_input: dict) -> requests.Response:
    return requests.post(
        server.url(f"/v2/models/{name}/infer"), json={"inputs": [request_input]}, timeout=60
    )


def fp32(images: np.ndarray, shape: list[int]) -> dict:
    return {"name": "image", "datatype": "FP32", "shape": shape, "data": images.ravel().tolist()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A SavedModel the library's trainer trained on the digits, and its test images."""
    return trained_mnist(tmp_path_factory)


@pytest.fixture
def saved_model(tmp_path: Path) -> Path:
    """A directory shaped like a SavedModel, for checks that never load it."""
    model = tmp_path / "saved"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"\x08\x01")
    (model / "variables/variables.index").write_bytes(b"index")
    return model


def test_the_model_dir_is_self_contained_and_links_the_model(saved_model: Path, tmp_path: Path):
    dest = write_model_dir(tmp_path / "out", saved_model, provenance(COMMIT), "mnist")
    assert sorted(files_of(dest)) == [
        "1/saved_model.pb",
        "1/variables/variables.index",
        MODEL_SETTINGS_FILE,
        "provenance.json",
        RUNTIME_FILE,
        MODEL_CLASS_FILE,
    ]
    settings = json.loads((dest / MODEL_SETTINGS_FILE).read_text())
    assert settings == model_settings("mnist", COMMIT)
    assert settings["implementation"] == IMPLEMENTATION == "savedmodel_runtime.SavedModelRuntime"
    assert settings["parameters"] == {"uri": MODEL_URI, "version": COMMIT}
    assert MODEL_URI == "./1"
    assert json.loads((dest / "provenance.json").read_text()) == provenance(COMMIT)
    assert (dest / RUNTIME_FILE).read_text() == runtime_source()
    assert (dest / MODEL_CLASS_FILE).read_text() == model_class_source()
    assert (dest / "1/saved_model.pb").stat().st_ino == (
        saved_model / "saved_model.pb"
    ).stat().st_ino
    # An empty destination is fine too.
    (tmp_path / "empty").mkdir()
    write_model_dir(tmp_path / "empty", saved_model, provenance(COMMIT), "m-1")


@pytest.mark.parametrize("name", ["MNIST", "-mnist", "mnist-", "a_b", "a.b", "", "x" * 64])
def test_a_name_mlserver_or_kserve_would_refuse_is_refused(
    saved_model: Path, tmp_path: Path, name: str
):
    with pytest.raises(KfpPachydermError, match=repr(name).replace("(", r"\(")):
        write_model_dir(tmp_path / "out", saved_model, provenance(COMMIT), name)
    assert not (tmp_path / "out").exists()


def test_a_bad_model_dir_provenance_or_destination_is_refused(saved_model: Path, tmp_path: Path):
    with pytest.raises(KfpPachydermError, match=f"{tmp_path / 'nothing'} holds no saved_model"):
        write_model_dir(tmp_path / "out", tmp_path / "nothing", provenance(COMMIT), "mnist")
    with pytest.raises(KfpPachydermError, match="must name model.commit$"):
        write_model_dir(tmp_path / "out", saved_model, {"model": {"uri": "pfs://m@x"}}, "mnist")
    with pytest.raises(KfpPachydermError, match="must name model.uri and model.commit"):
        write_model_dir(tmp_path / "out", saved_model, {}, "mnist")
    (tmp_path / "full").mkdir()
    (tmp_path / "full/keep").write_text("")
    with pytest.raises(KfpPachydermError, match=f"{tmp_path / 'full'} is not empty"):
        write_model_dir(tmp_path / "full", saved_model, provenance(COMMIT), "mnist")
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path / "full") == ["keep"]


def test_the_image_installs_the_serving_requirements_and_runs_mlserver():
    pins = [
        line.strip()
        for line in (IMAGE_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert pins == list(SERVING_REQUIREMENTS)
    dockerfile = (IMAGE_DIR / "Dockerfile").read_text()
    assert "Apache License 2.0" in dockerfile
    assert "ARG BASE=python:3.11-slim\nFROM ${BASE}" in dockerfile
    assert f"COPY kfp_pachyderm/mlserver/runtime.py /opt/kfp-pachyderm/{RUNTIME_FILE}" in dockerfile
    assert (
        f"COPY kfp_pachyderm/seldon/savedmodel_server.py /opt/kfp-pachyderm/{MODEL_CLASS_FILE}"
        in dockerfile
    )
    assert "PYTHONPATH=/opt/kfp-pachyderm" in dockerfile
    assert "MLSERVER_MODELS_DIR=/mnt/models" in dockerfile
    assert "EXPOSE 8080 8081" in dockerfile
    assert "USER 8888" in dockerfile
    assert dockerfile.rstrip().endswith('CMD ["mlserver", "start", "/mnt/models"]')


def check_digits(server: MLServerProcess, name: str, model_dir: Path, arrays: dict, commit: str):
    """The served digit model answers as TensorFlow does here, with its commit as version."""
    image = arrays["x_test"][:1].astype(np.float32)
    expected = reference_probabilities(model_dir, image)
    for shape in ([1, 28, 28], [1, 784]):
        response = infer(server, name, fp32(image, shape))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_name"] == name and body["model_version"] == commit
        assert body["parameters"]["model_commit"] == commit
        ((output,),) = [body["outputs"]]
        assert output["datatype"] == "FP32" and output["shape"] == [1, 10]
        np.testing.assert_allclose(np.array(output["data"]).reshape(1, 10), expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first run creates the virtualenv
def test_mlserver_serves_the_digit_model_over_v2(trained, tmp_path: Path):
    venv = mlserver_venv()
    model_dir, arrays = trained
    served = write_model_dir(tmp_path / "mnist", model_dir, provenance(COMMIT), "mnist")
    before = files_of(served)
    with MLServerProcess(venv, served, "mnist") as server:
        check_digits(server, "mnist", model_dir, arrays, COMMIT)
        metadata = requests.get(server.url("/v2/models/mnist"), timeout=10)
        assert metadata.status_code == 200, metadata.text
        assert metadata.json() == {
            "name": "mnist",
            "versions": [COMMIT],
            "platform": "tensorflow",
            "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 28, 28]}],
            "outputs": [{"name": "output_0", "datatype": "FP32", "shape": [-1, 10]}],
            "parameters": {
                "model_commit": COMMIT,
                "model_repo": "models",
                "model_uri": f"pfs://models@{COMMIT}",
            },
        }
        bad = infer(server, "mnist", fp32(np.zeros((1, 27)), [1, 27]))
        assert bad.status_code == 400
        assert "input of shape (1, 27) does not fit the model's input 'image'" in bad.text
        text = infer(
            server, "mnist", {"name": "x", "datatype": "BYTES", "shape": [1], "data": ["a"]}
        )
        assert text.status_code == 400 and "takes FP32 input 'image'" in text.text
        ragged = infer(server, "mnist", {**fp32(np.zeros(27), [1, 28]), "name": "x"})
        assert ragged.status_code == 400 and "input 'x' (FP32, shape [1, 28])" in ragged.text
    assert files_of(served) == before, "serving writes nothing into the model directory"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_mlserver_answers_issue_text_with_the_titles_of_the_saved_model(tmp_path_factory):
    venv = mlserver_venv()
    model_dir = trained_summarizer(tmp_path_factory)
    texts = [
        "The installer crashes when the path has a space in it",
        "Add a dark theme to the settings page, please",
        "Säve fails with a stack trace: see https://example.com/trace",
    ]
    expected = summarize(model_dir, texts)
    assert all(expected), "the model writes titles"
    commit = "fedcba9876544321fedcba9876543210"
    served = write_model_dir(
        tmp_path_factory.mktemp("text") / "titles", model_dir, provenance(commit, "train"), "titles"
    )
    with MLServerProcess(venv, served, "titles") as server:
        for shape in ([3], [3, 1]):
            request = {"name": "body", "datatype": "BYTES", "shape": shape, "data": texts}
            response = infer(server, "titles", request)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model_version"] == commit
            assert body["parameters"]["model_repo"] == "train"
            ((output,),) = [body["outputs"]]
            assert output["name"] == "title" and output["datatype"] == "BYTES"
            assert output["shape"] == [3, 1]
            assert output["data"] == expected
        numbers = infer(
            server, "titles", {"name": "b", "datatype": "FP32", "shape": [1], "data": [1]}
        )
        assert numbers.status_code == 400 and "takes BYTES input 'body'" in numbers.text


DOWNLOAD = """
import sys
from kserve_storage import Storage
print(Storage.download(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kserve_storage_fetches_the_committed_model_dir_through_s3_and_mlserver_serves_it(
    trained, tmp_path: Path
):
    venv = mlserver_venv()
    model_dir, arrays = trained
    with LocalPachyderm(tmp_path / "pfs", token=TOKEN, s3_port=0) as pachd:
        client = Client.from_pachd_address(pachd.address, auth_token=TOKEN)
        target = CommitRef("models", branch="master")
        ensure_repo(client, target)
        with output_commit(client, target, provenance=ProvenanceRecord(step="train")) as out:
            written = write_model_dir(
                tmp_path / "written", model_dir, provenance(out.ref.commit), "mnist"
            )
            put_tree(client, out.pfs_commit(), written, dest="/serving/mnist")
        committed = tmp_path / "committed"
        read_tree(client, out.ref.with_path("/serving/mnist"), committed)
        assert files_of(committed) == files_of(written)

        uri = f"s3://{bucket_name(out.ref)}/serving/mnist"
        assert uri == f"s3://{out.ref.commit}.master.models/serving/mnist"
        downloaded = tmp_path / "mnt/models"
        downloaded.mkdir(parents=True)
        env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "AWS_ENDPOINT_URL": pachd.s3_endpoint,
            "AWS_ACCESS_KEY_ID": TOKEN,
            "AWS_SECRET_ACCESS_KEY": TOKEN,
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
        }
        done = subprocess.run(
            [str(venv / "bin/python"), "-c", DOWNLOAD, uri, str(downloaded)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
    # kserve_storage skips size-0 objects; a model directory has none, so nothing is lost.
    assert all(content for content in files_of(committed).values())
    assert files_of(downloaded) == files_of(committed)

    with MLServerProcess(venv, downloaded, "mnist") as server:
        check_digits(server, "mnist", model_dir, arrays, out.ref.commit)
        log = server.log_text()
    assert "mnist" in log and TOKEN not in log
