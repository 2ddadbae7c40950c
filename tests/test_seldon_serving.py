"""Serving: the model class in this process, and the real ``seldon-core-microservice`` (in its
own virtualenv with the serving image's requirements) answering predictions for a model the
library's trainer trained, from the build context build_seldon_image committed.

The virtualenv is cached (see tests/serving_venv.py); creating it downloads TensorFlow and takes
about two minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from pachyderm_sdk import Client

from kfp_pachyderm.modelimage.build import BuildOptions
from kfp_pachyderm.oci.media import DOCKER
from kfp_pachyderm.oci.registry import RegistryClient
from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import put_tree, read_tree
from kfp_pachyderm.seldon.build import build_seldon_image
from kfp_pachyderm.seldon.context import MODEL_CLASS
from kfp_pachyderm.seldon.savedmodel_server import SavedModelServer, find_saved_model

from .conftest import free_port
from .registry import Registry, push_synthetic, require_registry_tools, synthetic_image
from .serving_venv import serving_venv
from .trained_models import reference_probabilities, trained_mnist

pytestmark = pytest.mark.slow


def seldon_venv() -> Path:
    """The Seldon serving image's requirements' virtualenv (see tests/serving_venv.py)."""
    return serving_venv("seldon")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A SavedModel the library's trainer trained on the digits, and its test images."""
    return trained_mnist(tmp_path_factory)


def test_the_model_class_in_process(trained, tmp_path: Path):
    model_dir, arrays = trained
    versions = tmp_path / "models"
    shutil.copytree(model_dir, versions / "3")
    shutil.copytree(model_dir, versions / "12")
    (versions / "provenance.json").write_text(
        json.dumps({"model": {"commit": "c" * 32, "repo": "models", "uri": "pfs://x"}})
    )
    assert find_saved_model(versions) == versions / "12"
    server = SavedModelServer(model_uri=str(versions))
    assert server.tags() == {
        "model_commit": "c" * 32,
        "model_repo": "models",
        "model_uri": "pfs://x",
    }
    assert server.init_metadata()["versions"] == ["c" * 32]
    with pytest.raises(RuntimeError, match="not loaded"):
        server.health_status()
    server.load()
    assert server.health_status() == {"ready": True, "model_commit": "c" * 32}
    images = arrays["x_test"][:4]
    probabilities = server.predict(images, [])
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(probabilities, reference_probabilities(model_dir, images), atol=1e-6)
    np.testing.assert_allclose(
        server.predict(images.reshape(4, -1).tolist()), probabilities, atol=1e-6
    )
    with pytest.raises(ValueError, match=r"input of shape \(4, 27\) does not fit"):
        server.predict(np.zeros((4, 27)))
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        SavedModelServer(model_uri=str(tmp_path / "empty")).load()
    with pytest.raises(KeyError, match="no signature 'nope'"):
        SavedModelServer(model_uri=str(model_dir), signature_name="nope").load()


class Microservice:
    """``seldon-core-microservice`` as a child process in its own process group."""

    def __init__(self, venv: Path, context: Path):
        self.http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        parameters = [{"name": "model_uri", "value": str(context / "model"), "type": "STRING"}]
        self.log = context.parent / "microservice.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(venv / "bin/seldon-core-microservice"), MODEL_CLASS,
                 "--service-type", "MODEL", "--workers", "1",
                 "--http-port", str(self.http_port), "--grpc-port", str(grpc_port),
                 "--metrics-port", str(metrics_port), "--parameters", json.dumps(parameters)],
                cwd=context,
                env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(context.parent)},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def wait_ready(self, timeout: float = 180) -> None:
        """Poll /health/status until it answers 200, the process exits or ``timeout`` s pass. A
        refused connection and a slow first answer (a read timeout while the model loads) both
        mean "not yet"; no probe runs past the deadline."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while (remaining := deadline - time.monotonic()) > 0:
            if self.proc.poll() is not None:
                last = f"exited with {self.proc.returncode}"
                break
            try:
                answer = requests.get(self.url("/health/status"), timeout=min(5, remaining))
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}"
            except (requests.ConnectionError, requests.Timeout) as err:
                last = f"{type(err).__name__}: {err}"
            time.sleep(0.5)
        pytest.fail(
            f"seldon-core-microservice did not get ready in {timeout} s ({last}):\n"
            f"{self.log.read_text()[-4000:]}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


@pytest.mark.timeout(1800)  # the first run creates the virtualenv
def test_seldon_core_microservice_serves_the_built_context(
    trained, client: Client, tmp_path_factory, tmp_path: Path
):
    venv = seldon_venv()
    model_dir, arrays = trained
    require_registry_tools()
    with Registry(tmp_path_factory.mktemp("registry")) as registry:
        push_synthetic(
            RegistryClient(registry.host, plain_http=True),
            "base/seldon",
            "1",
            synthetic_image(DOCKER),
        )
        target = CommitRef("models", branch="master")
        ensure_repo(client, target)
        with output_commit(client, target, provenance=ProvenanceRecord(step="train")) as out:
            put_tree(client, out.pfs_commit(), model_dir, dest="/model")
        result = build_seldon_image(
            client,
            out.ref,
            f"{registry.host}/models/mnist",
            BuildOptions(base_image=f"{registry.host}/base/seldon:1", plain_http=True),
        )
    context = tmp_path / "context"
    read_tree(client, result.build_commit, context)

    service = Microservice(venv, context)
    try:
        service.wait_ready()
        images = arrays["x_test"][:5]
        response = requests.post(
            service.url("/api/v1.0/predictions"),
            json={"data": {"ndarray": images.tolist()}},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        probabilities = np.array(body["data"]["ndarray"])
        assert probabilities.shape == (5, 10)
        np.testing.assert_allclose(
            probabilities, reference_probabilities(model_dir, images), atol=1e-5
        )
        assert body["meta"]["tags"]["model_commit"] == out.ref.commit
        accuracy = np.mean(probabilities.argmax(axis=1) == arrays["y_test"][:5])
        flat = requests.post(
            service.url("/api/v1.0/predictions"),
            json={"data": {"ndarray": images.reshape(5, -1).tolist()}},
            timeout=60,
        ).json()
        np.testing.assert_allclose(np.array(flat["data"]["ndarray"]), probabilities, atol=1e-6)
        metadata = requests.get(service.url("/api/v1.0/metadata"), timeout=10).json()
        assert metadata["versions"] == [out.ref.commit]
        assert metadata["custom"]["repo"] == "models"
        bad = requests.post(
            service.url("/api/v1.0/predictions"),
            json={"data": {"ndarray": [[1, 2, 3]]}},
            timeout=60,
        )
        assert bad.status_code >= 400 and "does not fit" in bad.text
        print(f"served {result.image}: accuracy on 5 test digits {accuracy:.1f}")
    finally:
        service.stop()
