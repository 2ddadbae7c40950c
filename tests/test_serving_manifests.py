"""The KServe and Seldon Core 2 manifests: every field is one the CRD defines, every required
field is there, the model commit is pinned, and credentials appear only in the Secrets.

The field lists are facts from the CRDs' Go types: KServe's
``pkg/apis/serving/v1beta1/{predictor,predictor_model,component}.go`` and
``v1alpha1/servingruntime_types.go``, its S3 credential annotations in
``pkg/credentials/s3/s3_secret.go`` and the ServiceAccount's ``secrets`` it reads in
``pkg/credentials/service_account_credentials.go``; Seldon Core 2's
``operator/apis/mlops/v1alpha1/{model,server}_types.go`` and its storage-secret format
(``docs-gb/kubernetes/storage-secrets.md``: one key, an rclone remote as JSON, whose name is the
URI's scheme).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.kserve.manifests import (
    image_inference_service,
    modelcar_inference_service,
    serving_runtime,
    storage_inference_service,
    storage_secret,
    storage_service_account,
)
from kfp_pachyderm.modelimage.metadata import (
    ANNOTATION_MODEL,
    ANNOTATION_REPO,
    LABEL_COMMIT,
    LABEL_REPO,
    label_value,
)
from kfp_pachyderm.oci.reference import ImageRef
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.seldon.core2 import CAPABILITY, core2_model, core2_server, rclone_secret
from kfp_pachyderm.seldon.deploy import image_deployment, tfserving_deployment

MODEL = CommitRef("models", commit="0123456789ab4def0123456789abcdef", path="/model")
BUILD = CommitRef("mlserver-builds", commit="fedcba9876544321fedcba9876543210")
IMAGE = ImageRef.parse(f"registry.example.com/ml/mnist:{MODEL.commit}@sha256:{'a' * 64}")
BASE = f"registry.example.com/kfp-pachyderm-mlserver:1@sha256:{'b' * 64}"
TOKEN = "s3cr3t-pachd-token"
# A label value as the API server validates it (apimachinery ``validation.IsValidLabelValue``:
# at most 63 characters, alphanumerics at both ends, '-', '_' and '.' between); an object whose
# label fails it is refused with 422 Invalid.
K8S_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

# (allowed keys, required keys) per object path; "*" marks a list of such objects.
CONTAINER = ({"name", "image", "env", "ports", "resources", "args", "command"}, {"name"})
SCHEMAS = {
    "InferenceService": {
        "": ({"apiVersion", "kind", "metadata", "spec"}, {"apiVersion", "kind", "metadata"}),
        "spec": ({"predictor", "transformer", "explainer"}, {"predictor"}),
        "spec.predictor": (
            {"model", "containers", "serviceAccountName", "minReplicas", "maxReplicas"},
            set(),
        ),
        "spec.predictor.model": (
            {"modelFormat", "runtime", "protocolVersion", "storageUri", "runtimeVersion"},
            {"modelFormat"},
        ),
        "spec.predictor.model.modelFormat": ({"name", "version"}, {"name"}),
        "spec.predictor.containers.*": CONTAINER,
    },
    "ServingRuntime": {
        "": ({"apiVersion", "kind", "metadata", "spec"}, {"apiVersion", "kind", "metadata"}),
        "spec": (
            {"supportedModelFormats", "protocolVersions", "containers", "multiModel"},
            {"containers"},
        ),
        "spec.supportedModelFormats.*": ({"name", "version", "autoSelect", "priority"}, {"name"}),
        "spec.containers.*": CONTAINER,
    },
    "Model": {
        "": ({"apiVersion", "kind", "metadata", "spec"}, {"apiVersion", "kind", "metadata"}),
        "spec": (
            {"storageUri", "requirements", "memory", "secretName", "replicas", "server"},
            {"storageUri"},
        ),
    },
    "Server": {
        "": ({"apiVersion", "kind", "metadata", "spec"}, {"apiVersion", "kind", "metadata"}),
        "spec": (
            {"serverConfig", "extraCapabilities", "capabilities", "podSpec", "replicas"},
            {"serverConfig"},
        ),
        "spec.podSpec.containers.*": CONTAINER,
    },
    "ServiceAccount": {"": ({"apiVersion", "kind", "metadata", "secrets"}, {"metadata"})},
    "Secret": {"": ({"apiVersion", "kind", "metadata", "type", "stringData"}, {"metadata"})},
}
PROTOCOLS = {"v1", "v2", "grpc-v1", "grpc-v2"}  # KServe's InferenceServiceProtocol values


def objects_at(document: dict, path: str) -> list[dict]:
    found = [document]
    for part in [p for p in path.split(".") if p]:
        if part == "*":
            found = [item for value in found for item in value]
        else:
            found = [value[part] for value in found if part in value]
    return found


def check_schema(document: dict) -> None:
    kind = document["kind"]
    for path, (allowed, required) in SCHEMAS[kind].items():
        for value in objects_at(document, path):
            assert set(value) <= allowed, f"{kind} {path}: unknown {set(value) - allowed}"
            assert required <= set(value), f"{kind} {path}: missing {required - set(value)}"
    name = document["metadata"]["name"]
    assert name and len(name) <= 63 and name == name.lower()


def round_trip(document: dict) -> dict:
    """As it reaches the API: YAML, as the components write it."""
    return yaml.safe_load(yaml.safe_dump(document, sort_keys=False))


def test_inference_services_name_fields_kserve_defines_and_pin_the_commit():
    from_image = round_trip(image_inference_service("mnist", IMAGE, MODEL, "ml"))
    from_storage = round_trip(storage_inference_service("mnist", BUILD, MODEL, "ml"))
    from_modelcar = round_trip(modelcar_inference_service("mnist", IMAGE, MODEL, "ml"))
    runtime = round_trip(serving_runtime(BASE, "ml"))
    for document in (from_image, from_storage, from_modelcar, runtime):
        check_schema(document)
    for service in (from_image, from_storage, from_modelcar):
        assert service["apiVersion"] == "serving.kserve.io/v1beta1"
        assert service["metadata"]["labels"][LABEL_COMMIT] == MODEL.commit
        assert service["metadata"]["namespace"] == "ml"
    (container,) = from_image["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container" and container["image"] == str(IMAGE)
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]

    model = from_storage["spec"]["predictor"]["model"]
    assert model["storageUri"] == f"s3://{BUILD.commit}.master.mlserver-builds/model"
    assert model["protocolVersion"] in PROTOCOLS and model["protocolVersion"] == "v2"
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = runtime["spec"]["supportedModelFormats"]
    assert model["modelFormat"]["name"] in {f["name"] for f in formats}
    assert formats[0]["autoSelect"] is False, "only InferenceServices naming it use it"
    assert set(runtime["spec"]["protocolVersions"]) <= PROTOCOLS
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert from_storage["spec"]["predictor"]["serviceAccountName"] == "kfp-pachyderm-s3"


def test_the_modelcar_form_names_the_image_by_digest_on_the_mlserver_runtime():
    """KServe's modelcar: ``storageUri: oci://<image>``, whose rest KServe hands the kubelet as
    the sidecar's image (``pkg/utils``: ``strings.TrimPrefix(modelUri, OciURIPrefix)``); the
    runtime that reads ``/mnt/models`` is the library's ServingRuntime, as in the S3 form."""
    service = round_trip(modelcar_inference_service("mnist", IMAGE, MODEL, "ml"))
    runtime = round_trip(serving_runtime(BASE, "ml"))
    check_schema(service)
    model = service["spec"]["predictor"]["model"]
    assert model["storageUri"] == f"oci://registry.example.com/ml/mnist@{IMAGE.digest}"
    assert ImageRef.parse(model["storageUri"].removeprefix("oci://")).digest == IMAGE.digest
    assert model["runtime"] == runtime["metadata"]["name"] == "kfp-pachyderm-mlserver"
    assert model["modelFormat"] == {"name": "tensorflow"}
    assert model["modelFormat"]["name"] in {
        f["name"] for f in runtime["spec"]["supportedModelFormats"]
    }
    assert model["protocolVersion"] == "v2"
    assert set(service["spec"]["predictor"]) == {"model"}, "no S3 credentials to attach"
    assert service["metadata"]["labels"][LABEL_COMMIT] == MODEL.commit
    other = modelcar_inference_service("mnist", IMAGE, MODEL, runtime="my-mlserver")
    assert other["spec"]["predictor"]["model"]["runtime"] == "my-mlserver"


def test_seldon_core2_model_runs_on_a_server_with_its_capability():
    model = round_trip(core2_model("mnist", BUILD, MODEL, "seldon", memory="2Gi"))
    server = round_trip(core2_server(BASE, "seldon"))
    for document in (model, server):
        check_schema(document)
        assert document["apiVersion"] == "mlops.seldon.io/v1alpha1"
    assert model["spec"]["storageUri"] == f"s3://{BUILD.commit}.master.mlserver-builds/model"
    assert set(model["spec"]["requirements"]) <= {"mlserver", *server["spec"]["extraCapabilities"]}
    assert CAPABILITY in model["spec"]["requirements"]
    assert server["spec"]["serverConfig"] == "mlserver"
    assert server["spec"]["podSpec"]["containers"] == [{"name": "mlserver", "image": BASE}]
    assert model["spec"]["memory"] == "2Gi"
    assert model["metadata"]["labels"][LABEL_COMMIT] == MODEL.commit


def test_credentials_are_only_in_the_secrets_kserve_and_seldon_read():
    kserve = round_trip(storage_secret("https://pachd.example.com:30600", TOKEN, namespace="ml"))
    check_schema(kserve)
    annotations = kserve["metadata"]["annotations"]
    assert annotations["serving.kserve.io/s3-endpoint"] == "pachd.example.com:30600"
    assert annotations["serving.kserve.io/s3-usehttps"] == "1"
    assert kserve["stringData"] == {"AWS_ACCESS_KEY_ID": TOKEN, "AWS_SECRET_ACCESS_KEY": TOKEN}
    plain = storage_secret("pachd.pachyderm:30600")
    assert plain["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "0"
    assert plain["stringData"]["AWS_ACCESS_KEY_ID"] == "pachyderm", "any value without auth"
    account = round_trip(storage_service_account(namespace="ml"))
    check_schema(account)
    assert account["secrets"] == [{"name": kserve["metadata"]["name"]}]

    rclone = round_trip(rclone_secret("http://pachd.pachyderm:30600", TOKEN))
    check_schema(rclone)
    (key,) = rclone["stringData"]
    remote = json.loads(rclone["stringData"][key])
    assert remote["name"] == "s3" and remote["type"] == "s3"
    assert core2_model("m", BUILD, MODEL)["spec"]["storageUri"].startswith(f"{remote['name']}://")
    assert remote["parameters"]["endpoint"] == "http://pachd.pachyderm:30600"
    assert remote["parameters"]["access_key_id"] == TOKEN

    for document in (
        image_inference_service("mnist", IMAGE, MODEL),
        storage_inference_service("mnist", BUILD, MODEL),
        modelcar_inference_service("mnist", IMAGE, MODEL),
        serving_runtime(BASE),
        account,
        core2_model("mnist", BUILD, MODEL),
        core2_server(BASE),
    ):
        assert TOKEN not in yaml.safe_dump(document)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: image_inference_service("mnist", ImageRef.parse("r.io/m:1"), MODEL), "digest"),
        (lambda: image_inference_service("Mnist", IMAGE, MODEL), "invalid InferenceService"),
        (lambda: image_inference_service("1mnist", IMAGE, MODEL), "must start with a letter"),
        (
            lambda: modelcar_inference_service("m", ImageRef.parse("r.io/m:1"), MODEL),
            "r.io/m:1 has no digest",
        ),
        (lambda: modelcar_inference_service("m", IMAGE, MODEL, runtime="A"), "ServingRuntime"),
        (lambda: storage_inference_service("m", CommitRef("b"), MODEL), "names no commit ID"),
        (lambda: storage_inference_service("m", BUILD, CommitRef("models")), "names no commit"),
        (lambda: storage_inference_service("m", BUILD, MODEL, runtime="A"), "ServingRuntime"),
        (lambda: storage_secret("ftp://pachd:30600"), "'ftp://pachd:30600' is invalid"),
        (lambda: rclone_secret("http://pachd:30600/path"), "is invalid"),
        (lambda: core2_model("m", BUILD, MODEL, secret="Bad"), "invalid Secret name 'Bad'"),
        (lambda: core2_server("not an image"), "image"),
    ],
)
def test_bad_values_are_refused_naming_them(make, message):
    with pytest.raises(KfpPachydermError, match=message):
        make()


def _serving_documents(model: CommitRef) -> list[dict]:
    """Every serving resource the library writes for ``model``: InferenceServices, a Seldon
    Core 2 Model and SeldonDeployments."""
    return [
        image_inference_service("mnist", IMAGE, model),
        storage_inference_service("mnist", BUILD, model),
        modelcar_inference_service("mnist", IMAGE, model),
        core2_model("mnist", BUILD, model),
        image_deployment("mnist", IMAGE, model),
        tfserving_deployment("mnist", BUILD, model),
    ]


def test_a_valid_repo_name_is_its_own_label():
    """A repo name that is a valid label value is the label exactly (what ``kubectl get -l
    kfp-pachyderm/model-repo=<repo>`` selects by), with no repo annotation."""
    for repo in ("models", "Ab_c-9", "m" * 63):
        model = CommitRef(repo, commit=MODEL.commit, path="/model")
        for document in _serving_documents(model):
            metadata = round_trip(document)["metadata"]
            assert metadata["labels"][LABEL_REPO] == repo == label_value(repo)
            assert ANNOTATION_REPO not in metadata["annotations"]


@pytest.mark.parametrize("repo", ["models_", "-models", "_", "m" * 64, "-" + "x" * 90 + "_"])
def test_a_repo_name_no_label_can_hold_is_labelled_by_a_stand_in(repo: str):
    """pachd takes repo names of letters, digits, '_' and '-' of any length
    (``ancestry.ValidateName``, ``src/internal/ancestry/ancestry.go``), so ``models_`` or a
    64-character name is a repo; as a label value the API server refuses it (422). The label is
    then a valid stand-in, distinct per name, and the exact name is in an annotation."""
    model = CommitRef(repo, commit=MODEL.commit, path="/model")
    assert not K8S_LABEL_VALUE.fullmatch(repo) or len(repo) > 63
    stand_in = label_value(repo)
    assert K8S_LABEL_VALUE.fullmatch(stand_in) and len(stand_in) <= 63
    assert stand_in != label_value(repo + "x") != label_value("x" + repo)
    for document in _serving_documents(model):
        metadata = round_trip(document)["metadata"]
        assert metadata["labels"][LABEL_REPO] == stand_in
        assert metadata["annotations"][ANNOTATION_REPO] == repo
        assert metadata["annotations"][ANNOTATION_MODEL] == f"pfs://default/{repo}@{MODEL.commit}"
        assert metadata["labels"][LABEL_COMMIT] == MODEL.commit
        for value in metadata["labels"].values():
            assert K8S_LABEL_VALUE.fullmatch(value) and len(value) <= 63, value
