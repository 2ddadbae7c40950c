"""The model deployer, with the real kubernetes client over HTTP against the test API server; the
test plays KServe and Seldon Core 2 by writing the serving resource's status."""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from kubernetes.client.exceptions import ApiException

from kfp_pachyderm.kfp.k8s_client import KubernetesApiError, kubernetes_clients
from kfp_pachyderm.kserve.deploy import (
    DeployResult,
    ManifestError,
    ModelDeployer,
    ModelServingError,
    ModelServingTimeout,
)
from kfp_pachyderm.modelimage.metadata import LABEL_COMMIT

from .k8s_api import K8sApi, Recorder

NS = "models"
CRDS = (
    "inferenceservices.serving.kserve.io",
    "servingruntimes.serving.kserve.io",
    "models.mlops.seldon.io",
)
ISVCS = "inferenceservices.serving.kserve.io"
ISVC_PATH = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices"
RUNTIME_PATH = f"/apis/serving.kserve.io/v1alpha1/namespaces/{NS}/servingruntimes"
MODELS = "models.mlops.seldon.io"
MODEL_PATH = f"/apis/mlops.seldon.io/v1alpha1/namespaces/{NS}/models"
SECRET_PATH = f"/api/v1/namespaces/{NS}/secrets"
SA_PATH = f"/api/v1/namespaces/{NS}/serviceaccounts"
URL = "http://mnist.models.example.com"
KEY_ID = "AKIAKFPTESTKEY7F3A"
KEY = "pachd-token-s3cr3t+value/9"


@pytest.fixture
def api():
    with K8sApi(crds=CRDS) as server:
        yield server


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def make_deployer(api: K8sApi, rec: Recorder) -> ModelDeployer:
    custom, core = kubernetes_clients(api.configuration())
    return ModelDeployer(custom, core, clock=rec.clock, sleeper=rec.sleep, log=rec.log, poll_s=1)


@pytest.fixture
def deployer(api: K8sApi, rec: Recorder) -> ModelDeployer:
    return make_deployer(api, rec)


def service_account() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "kfp-pachyderm-s3", "namespace": NS},
        "secrets": [{"name": "kfp-pachyderm-s3"}],
    }


def runtime() -> dict:
    container = {"name": "kserve-container", "image": "registry.example.com/mlserver:1"}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": "kfp-pachyderm-mlserver", "namespace": NS},
        "spec": {
            "supportedModelFormats": [{"name": "tensorflow", "version": "2", "autoSelect": False}],
            "protocolVersions": ["v2"],
            "containers": [container],
        },
    }


def inference_service(commit: str = "c0ffee01", name: str = "mnist") -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS, "labels": {LABEL_COMMIT: commit}},
        "spec": {
            "predictor": {
                "serviceAccountName": "kfp-pachyderm-s3",
                "model": {
                    "modelFormat": {"name": "tensorflow"},
                    "runtime": "kfp-pachyderm-mlserver",
                    "protocolVersion": "v2",
                    "storageUri": f"s3://{commit}.master.build/model",
                },
            }
        },
    }


def seldon_model(commit: str = "c0ffee01") -> dict:
    return {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "mnist", "namespace": NS, "labels": {LABEL_COMMIT: commit}},
        "spec": {"storageUri": f"s3://{commit}.master.build/model", "requirements": ["tf"]},
    }


def documents(commit: str = "c0ffee01") -> list[dict]:
    return [service_account(), runtime(), inference_service(commit)]


def secret() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "kfp-pachyderm-s3",
            "namespace": NS,
            "annotations": {"serving.kserve.io/s3-endpoint": "pachd.pachyderm:30600"},
        },
        "type": "Opaque",
        "stringData": {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": KEY},
    }


def ready(generation: int, url: str = URL) -> dict:
    """An InferenceService status as KServe writes it once the predictor serves."""
    return {
        "observedGeneration": generation,
        "url": url,
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        "modelStatus": {"transitionStatus": "UpToDate"},
    }


def not_ready(generation: int, reason: str, message: str, **model_status) -> dict:
    return {
        "observedGeneration": generation,
        "conditions": [{"type": "Ready", "status": "False", "reason": reason, "message": message}],
        "modelStatus": {"transitionStatus": "InProgress", **model_status},
    }


def start(deployer: ModelDeployer, *args, **kwargs) -> Future:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(deployer.deploy, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def exists(api: K8sApi, resource: str, name: str = "mnist", generation: int = 1) -> None:
    """Wait until the deployer wrote generation ``generation`` of ``resource``."""
    api.wait_for(
        lambda: (
            (api.get(resource, NS, name) or {}).get("metadata", {}).get("generation") == generation
        )
    )


def polled(api: K8sApi, path: str, times: int) -> None:
    """Wait until the deployer read ``path`` ``times`` more times."""
    target = len(api.requests("GET", path + "$")) + times
    api.wait_for(lambda: len(api.requests("GET", path + "$")) >= target)


def test_creates_the_objects_in_order_and_waits_until_ready(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    run = start(deployer, documents(), secret(), timeout_s=300)
    exists(api, ISVCS)
    polled(api, f"{ISVC_PATH}/mnist", 2)
    assert not run.done()
    api.set_status(ISVCS, NS, "mnist", ready(1))
    result = run.result(10)
    assert result == DeployResult(
        name="mnist",
        namespace=NS,
        kind="InferenceService",
        url=URL,
        created=True,
        replaced=False,
        adopted=False,
        seconds=result.seconds,
    )
    assert result.seconds > 0
    writes = [(r.method, r.path) for r in api.requests() if r.method != "GET"]
    assert writes == [
        ("POST", SECRET_PATH),
        ("POST", SA_PATH),
        ("POST", RUNTIME_PATH),
        ("POST", ISVC_PATH),
    ]
    assert api.requests("POST", ISVC_PATH)[0].body == inference_service()
    assert api.requests("POST", RUNTIME_PATH)[0].body == runtime()
    assert "created InferenceService models/mnist (model commit c0ffee01" in rec.text()
    assert f"InferenceService models/mnist is Ready at {URL}" in rec.text()


def test_restarted_deploy_adopts_its_service_without_writing_it(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    run = start(deployer, documents(), secret())
    exists(api, ISVCS)
    api.set_status(ISVCS, NS, "mnist", ready(1))
    assert run.result(10).created
    before = len(api.requests())

    result = make_deployer(api, Recorder()).deploy(documents(), secret())
    assert result.adopted and not result.created and not result.replaced
    assert result.url == URL
    again = api.requests()[before:]
    assert [r for r in again if r.path.startswith(ISVC_PATH) and r.method != "GET"] == []
    assert api.get(ISVCS, NS, "mnist")["metadata"]["generation"] == 1


def test_adopting_allows_fields_the_server_defaulted(api: K8sApi, deployer: ModelDeployer) -> None:
    served = inference_service()
    served["spec"]["predictor"]["model"]["resources"] = {"requests": {"cpu": "1"}}
    api.create_object(ISVCS, served)
    api.set_status(ISVCS, NS, "mnist", ready(1))
    assert deployer.deploy(documents(), secret()).adopted


def test_new_commit_replaces_and_waits_for_the_new_generation(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    api.create_object(ISVCS, inference_service("c0ffee01"))
    api.set_status(ISVCS, NS, "mnist", ready(1, url="http://old"))
    run = start(deployer, documents("beef0002"), secret())
    exists(api, ISVCS, generation=2)
    polled(api, f"{ISVC_PATH}/mnist", 3)
    assert not run.done(), "Ready of generation 1 must not count for generation 2"
    api.set_status(ISVCS, NS, "mnist", ready(2))
    result = run.result(10)
    assert result.replaced and not result.adopted and result.url == URL
    put = api.requests("PUT", ISVC_PATH)
    assert len(put) == 1
    assert put[0].body["metadata"]["labels"][LABEL_COMMIT] == "beef0002"
    assert put[0].body["metadata"]["resourceVersion"]
    stored = api.get(ISVCS, NS, "mnist")
    assert stored["spec"] == inference_service("beef0002")["spec"]
    assert "status is of generation 1, not yet 2" in rec.text()


def test_a_failure_of_the_previous_model_does_not_count(
    api: K8sApi, deployer: ModelDeployer
) -> None:
    api.create_object(ISVCS, inference_service("c0ffee01"))
    failed = not_ready(1, "ModelLoadFailed", "old model broken")
    failed["modelStatus"]["transitionStatus"] = "BlockedByFailedLoad"
    api.set_status(ISVCS, NS, "mnist", failed)
    run = start(deployer, documents("beef0002"), secret())
    exists(api, ISVCS, generation=2)
    polled(api, f"{ISVC_PATH}/mnist", 2)
    assert not run.done()
    api.set_status(ISVCS, NS, "mnist", ready(2))
    assert run.result(10).replaced


def test_blocked_by_failed_load_fails_with_kserves_message(
    api: K8sApi, deployer: ModelDeployer
) -> None:
    run = start(deployer, documents(), secret())
    exists(api, ISVCS)
    info = {
        "reason": "ModelLoadFailed",
        "message": "Traceback (most recent call last):\n  OSError: SavedModel file does not exist",
        "exitCode": 1,
        "location": "mnist-predictor-7d9c",
    }
    status = not_ready(1, "ContainersNotReady", "containers not ready", lastFailureInfo=info)
    status["modelStatus"]["transitionStatus"] = "BlockedByFailedLoad"
    api.set_status(ISVCS, NS, "mnist", status)
    with pytest.raises(ModelServingError) as caught:
        run.result(10)
    assert str(caught.value) == (
        "InferenceService models/mnist cannot serve the model: BlockedByFailedLoad: "
        "ModelLoadFailed: Traceback (most recent call last): OSError: SavedModel file does not "
        "exist (exit code 1, in mnist-predictor-7d9c)"
    )
    assert not isinstance(caught.value, ModelServingTimeout)


def test_invalid_spec_fails_but_an_unknown_runtime_is_waited_for(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    run = start(deployer, documents(), secret())
    exists(api, ISVCS)
    waiting = {
        "reason": "RuntimeNotRecognized",
        "message": "Waiting for runtime to become available",
    }
    status = not_ready(1, "PredictorNotReady", "runtime", lastFailureInfo=waiting)
    status["modelStatus"]["transitionStatus"] = "InvalidSpec"
    api.set_status(ISVCS, NS, "mnist", status)
    polled(api, f"{ISVC_PATH}/mnist", 2)
    assert not run.done()
    invalid = {"reason": "NoSupportingRuntime", "message": "Specified runtime does not support"}
    status["modelStatus"]["lastFailureInfo"] = invalid
    api.set_status(ISVCS, NS, "mnist", status)
    with pytest.raises(ModelServingError, match="InvalidSpec: NoSupportingRuntime: Specified"):
        run.result(10)


def test_stalled_rollout_fails(api: K8sApi, deployer: ModelDeployer) -> None:
    run = start(deployer, documents(), secret())
    exists(api, ISVCS)
    message = 'ReplicaSet "mnist-predictor-5f" has timed out progressing.'
    api.set_status(ISVCS, NS, "mnist", not_ready(1, "ProgressDeadlineExceeded", message))
    with pytest.raises(ModelServingError, match="Ready False: ProgressDeadlineExceeded: Replica"):
        run.result(10)


def test_timeout_names_the_last_ready_message(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    api.create_object(ISVCS, inference_service())
    message = 'Revision "mnist-predictor-00001" failed with message: 0/3 nodes are available.'
    api.set_status(ISVCS, NS, "mnist", not_ready(1, "RevisionMissing", message))
    with pytest.raises(ModelServingTimeout) as caught:
        deployer.deploy(documents(), secret(), timeout_s=30)
    assert str(caught.value) == (
        "InferenceService models/mnist was not Ready within 30s; last: Ready False: "
        f"RevisionMissing: {message}"
    )
    assert rec.now == 30
    assert rec.text().count("waiting for InferenceService models/mnist") == 1


def test_forbidden_is_fatal_with_an_rbac_hint(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    message = (
        'inferenceservices.serving.kserve.io is forbidden: User "system:serviceaccount:kubeflow:'
        'pipeline-runner" cannot create resource "inferenceservices"'
    )
    api.fail_next("POST", ISVC_PATH, 403, message)
    with pytest.raises(KubernetesApiError) as caught:
        deployer.deploy(documents(), secret())
    assert caught.value.status == 403
    assert str(caught.value) == (
        f"cannot create inferenceservices.serving.kserve.io models/mnist: HTTP 403 Forbidden: "
        f"{message} (the deploy step's service account needs RBAC permission to create "
        "inferenceservices.serving.kserve.io in namespace models)"
    )
    assert rec.sleeps == []


def test_unavailable_api_is_retried(api: K8sApi, deployer: ModelDeployer, rec: Recorder) -> None:
    api.fail_next("POST", ISVC_PATH, 503, "etcdserver: leader changed", times=2)
    api.fail_next("GET", f"{ISVC_PATH}/mnist$", 503, "etcdserver: leader changed", times=1)
    run = start(deployer, documents(), secret())
    exists(api, ISVCS)
    api.set_status(ISVCS, NS, "mnist", ready(1))
    assert run.result(10).created
    assert len(api.requests("POST", ISVC_PATH)) == 3
    assert rec.sleeps[:3] == [0.5, 0.5, 1.0]
    assert (
        "create inferenceservices.serving.kserve.io models/mnist: HTTP 503 etcdserver: leader "
        "changed; retrying in 1.0s (attempt 2 of 6)"
    ) in rec.text()


@pytest.mark.parametrize(
    ("docs", "crds", "crd", "installer"),
    [
        (documents(), (), "servingruntimes.serving.kserve.io", "KServe"),
        ([service_account(), inference_service()], (), ISVCS, "KServe"),
        ([service_account(), seldon_model()], (ISVCS,), MODELS, "Seldon Core 2"),
    ],
)
def test_missing_crd_names_it(
    rec: Recorder, docs: list[dict], crds: tuple[str, ...], crd: str, installer: str
) -> None:
    with K8sApi(crds=crds) as bare, pytest.raises(KubernetesApiError) as caught:
        make_deployer(bare, rec).deploy(docs, secret())
    assert caught.value.status == 404
    assert f"cannot create {crd} models/" in str(caught.value)
    assert str(caught.value).endswith(
        f"(is {installer} installed (CRD {crd})? does namespace models exist?)"
    )


def test_secret_values_never_reach_the_log_or_errors(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    api.fail_next("POST", SECRET_PATH, 503, f"proxy error near {KEY}")
    run = start(deployer, documents(), secret())
    exists(api, ISVCS)
    info = {"reason": "ModelLoadFailed", "message": f"InvalidAccessKeyId {KEY_ID}: denied"}
    status = not_ready(1, "ContainersNotReady", f"token {KEY}", lastFailureInfo=info)
    status["modelStatus"]["transitionStatus"] = "BlockedByFailedLoad"
    api.set_status(ISVCS, NS, "mnist", status)
    with pytest.raises(ModelServingError) as caught:
        run.result(10)
    assert "InvalidAccessKeyId <redacted>: denied" in str(caught.value)

    api.fail_next("PUT", f"{SECRET_PATH}/", 422, f'Secret is invalid: data: "{KEY}"')
    with pytest.raises(KubernetesApiError) as refused:
        deployer.deploy(documents(), secret())
    assert 'Secret is invalid: data: "<redacted>"' in str(refused.value)

    texts = [rec.text(), str(caught.value), str(refused.value)]
    assert "HTTP 503 proxy error near <redacted>; retrying" in rec.text()
    assert "created Secret models/kfp-pachyderm-s3" in rec.text()
    for text in texts:
        assert KEY not in text and KEY_ID not in text
    posted = [r.body for r in api.requests("POST", SECRET_PATH)]
    assert posted[-1]["stringData"] == {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": KEY}
    assert api.get("secrets", NS, "kfp-pachyderm-s3")["data"]["AWS_ACCESS_KEY_ID"]


def _without(doc: dict, *path: str) -> dict:
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return doc


def _in_namespace(doc: dict, namespace: str) -> dict:
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = namespace
    return doc


@pytest.mark.parametrize(
    ("docs", "the_secret", "problem"),
    [
        ([], secret(), "no documents to deploy"),
        ([service_account(), _without(inference_service(), "metadata", "name")], None,
         "document 2 has no metadata.name"),
        ([_without(service_account(), "apiVersion"), inference_service()], None,
         "document 1 has no apiVersion"),
        ([service_account(), _without(inference_service(), "kind")], None,
         "document 2 has no kind"),
        ([service_account(), _in_namespace(inference_service(), "other")], None,
         "several namespaces ['models', 'other']"),
        (documents(), _in_namespace(secret(), "other"), "several namespaces"),
        ([{**service_account(), "kind": "Deployment", "apiVersion": "apps/v1"},
          inference_service()], None, "document 1 is a apps/v1 Deployment (kfp-pachyderm-s3)"),
        ([inference_service(), service_account()], None,
         "the last document must be the serving resource"),
        ([service_account(), inference_service("a"), seldon_model()], None,
         "document 2 (InferenceService mnist) is a second serving resource"),
        ([service_account(), _without(inference_service(), "metadata", "labels")], None,
         "the InferenceService mnist has no label kfp-pachyderm/model-commit"),
        ([_without(service_account(), "metadata", "namespace"),
          _without(inference_service(), "metadata", "namespace")], None, "no namespace"),
        (documents(), {**secret(), "kind": "ConfigMap"}, "the secret is a v1 ConfigMap"),
        (documents(), {**secret(), "stringData": {"AWS_ACCESS_KEY_ID": 7}},
         "the secret's stringData must map keys to strings"),
        ([service_account(), service_account(), inference_service()], None,
         "the ServiceAccount kfp-pachyderm-s3 is given twice"),
    ],
)  # fmt: skip
def test_validation_errors_come_before_any_request(
    api: K8sApi, deployer: ModelDeployer, docs: list, the_secret: dict | None, problem: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        deployer.deploy(docs, the_secret)
    assert problem in str(caught.value)
    assert KEY not in str(caught.value)
    assert api.requests() == []


def test_namespace_argument_fills_manifests_without_one(
    api: K8sApi, deployer: ModelDeployer
) -> None:
    docs = [_without(d, "metadata", "namespace") for d in documents()]
    api.create_object(ISVCS, inference_service())
    api.set_status(ISVCS, NS, "mnist", ready(1))
    assert deployer.deploy(docs, secret(), namespace=NS).adopted


def test_existing_supporting_objects_are_replaced(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    api.create_object("serviceaccounts", {**service_account(), "secrets": []})
    api.create_object("secrets", {**secret(), "stringData": {"AWS_ACCESS_KEY_ID": "old"}})
    api.create_object(ISVCS, inference_service())
    api.set_status(ISVCS, NS, "mnist", ready(1))
    deployer.deploy(documents(), secret())
    assert [r.path for r in api.requests("PUT")] == [
        f"{SECRET_PATH}/kfp-pachyderm-s3",
        f"{SA_PATH}/kfp-pachyderm-s3",
    ]
    assert api.get("serviceaccounts", NS, "kfp-pachyderm-s3")["secrets"] == [
        {"name": "kfp-pachyderm-s3"}
    ]
    assert "replaced ServiceAccount models/kfp-pachyderm-s3" in rec.text()


def test_conflict_while_replacing_reads_again(
    api: K8sApi, deployer: ModelDeployer, rec: Recorder
) -> None:
    api.create_object(ISVCS, inference_service("c0ffee01"))
    api.fail_next("PUT", ISVC_PATH, 409, "the object has been modified")
    run = start(deployer, documents("beef0002"), secret())
    exists(api, ISVCS, generation=2)
    api.set_status(ISVCS, NS, "mnist", ready(2))
    assert run.result(10).replaced
    assert len(api.requests("PUT", ISVC_PATH)) == 2
    assert "changed while being replaced; reading it again" in rec.text()


def test_seldon_model_becomes_ready(api: K8sApi, deployer: ModelDeployer, rec: Recorder) -> None:
    run = start(deployer, [service_account(), seldon_model()], secret())
    exists(api, MODELS)
    progressing = {"type": "ModelReady", "status": "False", "message": "ModelProgressing"}
    api.set_status(MODELS, NS, "mnist", {"conditions": [progressing]})
    polled(api, f"{MODEL_PATH}/mnist", 2)
    assert not run.done()
    conditions = [
        {"type": "ModelReady", "status": "True", "message": "ModelAvailable"},
        {"type": "Ready", "status": "True", "message": "ModelAvailable"},
    ]
    api.set_status(MODELS, NS, "mnist", {"conditions": conditions, "replicas": 1})
    result = run.result(10)
    assert (result.kind, result.url, result.created) == ("Model", "", True)
    assert api.requests("POST", MODEL_PATH)[0].body == seldon_model()


def test_seldon_schedule_failed_fails_with_the_reason(api: K8sApi, deployer: ModelDeployer) -> None:
    run = start(deployer, [service_account(), seldon_model()], secret())
    exists(api, MODELS)
    reason = "failed to schedule model mnist. [failed replica filter RequirementsReplicaFilter]"
    failed = {
        "type": "ModelReady",
        "status": "False",
        "message": "ScheduleFailed",
        "reason": reason,
    }
    api.set_status(MODELS, NS, "mnist", {"conditions": [failed, {**failed, "type": "Ready"}]})
    with pytest.raises(ModelServingError) as caught:
        run.result(10)
    assert (
        str(caught.value) == f"Model models/mnist cannot serve the model: ScheduleFailed: {reason}"
    )


def test_test_server_replaces_like_the_api_server(api: K8sApi) -> None:
    custom, _ = kubernetes_clients(api.configuration())
    args = ("serving.kserve.io", "v1beta1", NS, "inferenceservices")
    created = custom.create_namespaced_custom_object(*args, inference_service())
    api.set_status(ISVCS, NS, "mnist", ready(1))
    relabelled = inference_service()
    relabelled["metadata"]["labels"]["team"] = "ml"
    relabelled["metadata"]["resourceVersion"] = api.get(ISVCS, NS, "mnist")["metadata"][
        "resourceVersion"
    ]
    same = custom.replace_namespaced_custom_object(*args, "mnist", relabelled)
    assert same["metadata"]["generation"] == 1, "metadata changes keep the generation"
    assert same["status"] == ready(1), "a replace keeps the status"
    changed = inference_service("beef0002")
    changed["metadata"]["resourceVersion"] = same["metadata"]["resourceVersion"]
    assert (
        custom.replace_namespaced_custom_object(*args, "mnist", changed)["metadata"]["generation"]
        == 2
    )
    stale = inference_service("f00d0003")
    stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as conflict:
        custom.replace_namespaced_custom_object(*args, "mnist", stale)
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as unconditional:
        custom.replace_namespaced_custom_object(*args, "mnist", inference_service("f00d0003"))
    assert unconditional.value.status == 422
