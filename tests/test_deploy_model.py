"""The pipelines' closing KServe steps under kfp.local: build_mlserver_image commits the model
directory, deploy_model applies the InferenceService with the real ``kubernetes`` client (from
a kubeconfig) against the test Kubernetes API server, which plays KServe and marks it Ready.
The storage Secret holds the pachd token; no artifact and no step output does."""

import base64
import json
import threading
from pathlib import Path

import pytest
import yaml
from kfp import dsl
from kfp_pachyderm.pipelines.common_tasks import pinned_input, serve_on_kserve
from pachyderm_sdk import Client

from kfp_pachyderm.kfp.compile import load_component
from kfp_pachyderm.pfs.refs import CommitRef

from .k8s_api import K8sApi
from .trained_models import commit_model, fake_saved_model

TOKEN = "pachd-token-for-kserve-7d1e"
ISVC = "inferenceservices.serving.kserve.io"


@dsl.pipeline
def serve_models(deploy: bool, namespace: str, s3_endpoint: str):
    """What mnist_tfjob and issue_summarization end with, on the model branch's head."""
    model = pinned_input("models@master", "")
    serve_on_kserve(model, deploy, namespace, s3_endpoint, "", model_name="digits")


def kubeconfig(path: Path, api: K8sApi) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": api.url}}],
        "users": [{"name": "test", "user": {"token": "k8s-user-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def play_kserve(api: K8sApi, namespace: str, name: str) -> threading.Thread:
    """Mark the InferenceService Ready with a URL once it is created, as KServe would."""

    def ready() -> None:
        api.wait_for_request("POST", rf"/{ISVC.split('.')[0]}$", timeout=120)
        created = api.get(ISVC, namespace, name)
        api.set_status(
            ISVC,
            namespace,
            name,
            {
                "url": f"http://{name}.{namespace}.example.com",
                "observedGeneration": created["metadata"].get("generation", 1),
                "conditions": [{"type": "Ready", "status": "True"}],
                "modelStatus": {"transitionStatus": "UpToDate"},
            },
        )

    thread = threading.Thread(target=ready, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_on_kserve_deploys_the_model_commit_and_waits_until_ready(
    kfp_local: Client, tmp_path: Path, monkeypatch, capfd
):
    _, model = commit_model(kfp_local, fake_saved_model(tmp_path / "model", seed=9))
    (tmp_path / "token").write_text(TOKEN)
    monkeypatch.setenv("KFP_PACHYDERM_TOKEN_FILE", str(tmp_path / "token"))
    crds = (ISVC, "servingruntimes.serving.kserve.io")
    with K8sApi(crds=crds) as api:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", api)))
        play_kserve(api, "ml", "digits")
        serve_models(deploy=True, namespace="ml", s3_endpoint="http://pachd.example:30600")

        service = api.get(ISVC, "ml", "digits")
        uri = service["spec"]["predictor"]["model"]["storageUri"]
        build = CommitRef.parse(f"mlserver-builds@{uri.split('/')[2].split('.')[0]}")
        assert uri == f"s3://{build.commit}.master.mlserver-builds/model"
        assert service["metadata"]["labels"]["kfp-pachyderm/model-commit"] == model.commit
        secret = api.get("secrets", "ml", "kfp-pachyderm-s3")
        keys = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert keys == {"AWS_ACCESS_KEY_ID": TOKEN, "AWS_SECRET_ACCESS_KEY": TOKEN}
        annotations = secret["metadata"]["annotations"]
        assert annotations["serving.kserve.io/s3-endpoint"] == "pachd.example:30600"
        account = api.get("serviceaccounts", "ml", "kfp-pachyderm-s3")
        assert account["secrets"] == [{"name": "kfp-pachyderm-s3"}]
        assert api.get("servingruntimes.serving.kserve.io", "ml", "kfp-pachyderm-mlserver")

        posts = [r.path for r in api.requests("POST")]
        assert len([p for p in posts if p.endswith("/inferenceservices")]) == 1
    (task_dir,) = (tmp_path / "root").glob("serve-models-*/deploy-model")
    output = json.loads((task_dir / "executor_output.json").read_text())
    assert output["parameterValues"]["Output"] == "http://digits.ml.example.com"
    (artifact,) = output["artifacts"]["deployment"]["artifacts"]
    assert artifact["metadata"]["model_commit"] == model.commit
    written = (task_dir / "deployment").read_text()
    assert "InferenceService" in written and "Secret" not in written
    for root in (tmp_path / "root",):
        for path in root.rglob("*"):
            if path.is_file():
                assert TOKEN not in path.read_text(errors="replace"), path
    assert TOKEN not in capfd.readouterr().out


@pytest.mark.slow
def test_off_by_default_nothing_is_deployed(kfp_local: Client, tmp_path: Path, monkeypatch):
    commit_model(kfp_local, fake_saved_model(tmp_path / "model", seed=10))
    with K8sApi(crds=(ISVC,)) as api:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", api)))
        serve_models(deploy=False, namespace="ml", s3_endpoint="http://pachd:30600")
        assert api.requests() == []
    assert not list((tmp_path / "root").glob("serve-models-*/deploy-model"))
    assert "mlserver-builds" not in {r.repo.name for r in kfp_local.pfs.list_repo()}


def test_the_deploy_component_yaml_loads():
    component = load_component("deploy_model")
    assert set(component.component_spec.inputs) == {
        "manifests", "namespace", "s3_endpoint", "timeout_seconds",
    }  # fmt: skip
