"""build_seldon_image against the real local Pachyderm server and real registries on loopback:
the reproducible layer, the build context, the push (checked with skopeo and by unpacking the
layer), reruns that send nothing, provenance both ways, and registry errors."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from kfp import local
from pachyderm_sdk import Client

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.modelimage.build import BuildOptions
from kfp_pachyderm.oci.errors import BlobUnknownError, ImageNotFoundError, RegistryAuthError
from kfp_pachyderm.oci.labels import commit_of_image, commit_or_image
from kfp_pachyderm.oci.layer import build_layer
from kfp_pachyderm.oci.media import DOCKER, OCI
from kfp_pachyderm.oci.reference import ImageRef, digest_of
from kfp_pachyderm.oci.registry import RegistryClient
from kfp_pachyderm.pfs.commits import ensure_repo, inspect_commit
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import read_tree
from kfp_pachyderm.seldon.build import build_seldon_image
from kfp_pachyderm.seldon.context import SERVING_REQUIREMENTS, model_class_source
from kfp_pachyderm.seldon.deploy import (
    image_deployment,
    s3_gateway_secret,
    tfserving_deployment,
)
from kfp_pachyderm.seldon.job import BUILDKIT_IMAGE, dockerfile_build_job

from .conftest import REPO_ROOT
from .registry import (
    BASE_REPO,
    READER,
    READER_PASSWORD,
    Registry,
    basic_auth_entry,
    get_blob,
    push_synthetic,
    skopeo,
    skopeo_inspect,
    synthetic_image,
    write_docker_config,
)
from .trained_models import commit_model, fake_saved_model


@pytest.fixture(autouse=True)
def _no_ambient_docker_config(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)


def layer_members(blob: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {
            m.name: (m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()
        }


# --- the layer and the context ---------------------------------------------------------------


def test_the_layer_depends_only_on_paths_contents_and_exec_bits(tmp_path: Path):
    first = fake_saved_model(tmp_path / "a", seed=1)
    second = tmp_path / "b"
    for path in sorted(first.rglob("*"), reverse=True):  # another creation order
        target = second / path.relative_to(first)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            target.chmod(0o600)
            os.utime(target, (1, 1))
    one = build_layer({"/mnt/models": first}, tmp_path / "one.tar.gz", 1_700_000_000)
    two = build_layer({"/mnt/models": second}, tmp_path / "two.tar.gz", 1_700_000_000)
    assert (one.digest, one.diff_id, one.size) == (two.digest, two.diff_id, two.size)
    blob = one.path.read_bytes()
    assert blob[4:8] == b"\0\0\0\0", "gzip header mtime is 0"
    assert digest_of(blob) == one.digest and one.size == len(blob)
    assert digest_of(gzip.decompress(blob)) == one.diff_id
    members = layer_members(blob)
    assert list(members)[:3] == ["mnt", "mnt/models", "mnt/models/assets"]
    assert all(m.uid == m.gid == 0 and m.uname == m.gname == "" for m, _ in members.values())
    assert {m.mtime for m, _ in members.values()} == {1_700_000_000}
    assert members["mnt/models/saved_model.pb"][0].mode == 0o644
    assert members["mnt/models/variables"][0].mode == 0o755
    listing = subprocess.run(["tar", "tzf", str(one.path)], capture_output=True, text=True)
    assert "mnt/models/variables/variables.index" in listing.stdout.split()
    other = build_layer({"/mnt/models": first}, tmp_path / "t.tar.gz", 1_700_000_001)
    assert other.digest != one.digest


def test_weights_are_stored_and_text_is_deflated(tmp_path: Path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "weights.bin").write_bytes(os.urandom(3 << 20))
    (source / "vocab.txt").write_text("token\n" * 500_000)
    layer = build_layer({"/mnt/models": source}, tmp_path / "l.tar.gz", 0)
    assert 3 << 20 < layer.size < (3 << 20) + 200_000, "random bytes stored, text deflated"
    members = layer_members(layer.path.read_bytes())
    assert members["mnt/models/vocab.txt"][1] == b"token\n" * 500_000
    assert subprocess.run(["gzip", "-t", str(layer.path)]).returncode == 0


def test_the_layer_refuses_links_whiteouts_and_bad_destinations(tmp_path: Path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "link").symlink_to("/etc/passwd")
    with pytest.raises(KfpPachydermError, match="link.*neither a regular file"):
        build_layer({"/mnt/models": source}, tmp_path / "l.tar.gz", 0)
    (source / "link").unlink()
    (source / ".wh.file").write_text("")
    with pytest.raises(KfpPachydermError, match=r"'\.wh\.' mean deletions"):
        build_layer({"/mnt/models": source}, tmp_path / "l.tar.gz", 0)
    with pytest.raises(KfpPachydermError, match="other than /"):
        build_layer({"/": tmp_path}, tmp_path / "l.tar.gz", 0)
    with pytest.raises(KfpPachydermError, match="mtime -1"):
        build_layer({"/x": tmp_path}, tmp_path / "l.tar.gz", -1)


def test_a_linked_tree_is_hard_links_that_add_no_bytes(tmp_path: Path):
    """The MLServer layer's /models: the same tree as tar hard links after every file of
    /mnt/models; without ``links`` the layer is the one it always was."""
    model = fake_saved_model(tmp_path / "model", seed=3)
    plain = build_layer({"/mnt/models": model}, tmp_path / "plain.tar.gz", 1_700_000_000)
    none = build_layer({"/mnt/models": model}, tmp_path / "none.tar.gz", 1_700_000_000, links={})
    assert (none.digest, none.diff_id) == (plain.digest, plain.diff_id)
    linked = build_layer(
        {"/mnt/models": model}, tmp_path / "linked.tar.gz", 1_700_000_000,
        links={"/models": "/mnt/models"},
    )  # fmt: skip
    assert plain.size < linked.size < plain.size + 2048, "headers only, no file bytes"
    members = layer_members(linked.path.read_bytes())
    names = list(members)
    files = [n for n, (m, _) in members.items() if m.isfile()]
    assert names[: names.index("models")] == [n for n in names if n.startswith("mnt")]
    assert sorted(n for n in names if n.startswith("models")) == sorted(
        "models" + n[len("mnt/models") :] for n in names if n.startswith("mnt/models")
    )
    for name in files:
        link, _ = members["models" + name[len("mnt/models") :]]
        assert link.islnk() and link.linkname == name and link.size == 0
        assert link.mtime == 1_700_000_000 and link.uid == 0 and link.mode == 0o644
    assert members["models/variables"][0].isdir()
    with tarfile.open(linked.path) as tar:
        tar.extractall(tmp_path / "out", filter="data")
    out = tmp_path / "out"
    weights = "variables/variables.data-00000-of-00001"
    assert (out / "models" / weights).stat().st_ino == (out / "mnt/models" / weights).stat().st_ino
    assert (out / "models" / weights).read_bytes() == (model / weights).read_bytes()
    listing = subprocess.run(["tar", "tvzf", str(linked.path)], capture_output=True, text=True)
    assert f"models/{weights} link to mnt/models/{weights}" in listing.stdout

    def build(links: dict) -> None:
        build_layer({"/mnt/models": model}, tmp_path / "bad.tar.gz", 0, links=links)

    with pytest.raises(KfpPachydermError, match="names '/mnt/other', which is not one of"):
        build({"/models": "/mnt/other"})
    with pytest.raises(KfpPachydermError, match="layer link '/mnt' overlaps '/mnt/models'"):
        build({"/mnt": "/mnt/models"})
    with pytest.raises(KfpPachydermError, match="'/mnt/models/1' overlaps '/mnt/models'"):
        build({"/mnt/models/1": "/mnt/models"})
    with pytest.raises(KfpPachydermError, match="layer link '/' must be an absolute"):
        build({"/": "/mnt/models"})


def test_serving_requirements_match_the_image_requirements_file():
    lines = (REPO_ROOT / "images/seldon/requirements.txt").read_text().splitlines()
    pins = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    assert pins == SERVING_REQUIREMENTS
    dockerfile = (REPO_ROOT / "images/seldon/Dockerfile").read_text()
    assert "COPY kfp_pachyderm/seldon/savedmodel_server.py" in dockerfile
    assert "seldon-core-microservice $MODEL_NAME --service-type $SERVICE_TYPE" in dockerfile


# --- building and pushing --------------------------------------------------------------------


def test_build_push_inspect_unpack_and_rebuild(
    client: Client, plain: Registry, tmp_path: Path, monkeypatch
):
    model_dir = fake_saved_model(tmp_path / "model")
    data, model = commit_model(client, model_dir)
    base = f"{plain.host}/{BASE_REPO}:1.0"
    target = f"{plain.host}/models/mnist"
    result = build_seldon_image(
        client, model, target, BuildOptions(base_image=base, plain_http=True)
    )

    commit = model.commit
    assert str(result.image) == f"{target}:{commit}@{result.push.digest}"
    base_layers = [d["digest"] for d in json.loads(synthetic_image(DOCKER).manifest)["layers"]]
    assert sorted(result.push.mounted) == sorted(base_layers), "base blobs mounted, not copied"
    assert len(result.push.uploaded) == 2 and not result.push.copied  # the layer and the config

    inspected = skopeo_inspect(f"{target}:{commit}")
    assert inspected["Digest"] == result.push.digest
    labels = inspected["Labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.source"] == f"pfs://default/models@{commit}:/model"
    assert labels["org.opencontainers.image.base.digest"] == synthetic_image(DOCKER).digest
    assert labels["org.opencontainers.image.base.name"] == base
    assert labels["kfp-pachyderm.model.commit"] == commit
    assert labels["kfp-pachyderm.model.repo"] == "models"
    assert labels["org.opencontainers.image.title"] == "synthetic seldon base", "base labels kept"
    info = inspect_commit(client, model)
    created = labels["org.opencontainers.image.created"]
    assert created == info.finished.strftime("%Y-%m-%dT%H:%M:%SZ")

    manifest = json.loads(
        skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{target}:{commit}").stdout
    )
    assert manifest["mediaType"] == DOCKER.manifest
    assert [d["digest"] for d in manifest["layers"][:-1]] == base_layers
    assert manifest["layers"][-1]["mediaType"] == DOCKER.layer_gzip
    config = json.loads(get_blob(plain, "models/mnist", manifest["config"]["digest"]))
    assert config["created"] == created and config["history"][-1]["created"] == created
    assert config["config"]["Cmd"] == json.loads(synthetic_image(DOCKER).config)["config"]["Cmd"]

    layer = get_blob(plain, "models/mnist", manifest["layers"][-1]["digest"])
    assert digest_of(gzip.decompress(layer)) == config["rootfs"]["diff_ids"][-1]
    members = layer_members(layer)
    for path in model_dir.rglob("*"):
        if path.is_file():
            name = f"mnt/models/1/{path.relative_to(model_dir)}"
            assert members[name][1] == path.read_bytes(), name
    provenance = json.loads(members["mnt/models/provenance.json"][1])
    assert provenance["model"]["commit"] == commit
    assert provenance["model_provenance"]["inputs"] == [str(data)]
    assert provenance["base_image"] == f"{base}@{synthetic_image(DOCKER).digest}"

    context = tmp_path / "context"
    read_tree(client, result.build_commit, context)
    assert sorted(p.name for p in context.iterdir()) == [
        "Dockerfile", "README.md", "model", "requirements.txt", "savedmodel_server.py",
    ]  # fmt: skip
    assert (context / "savedmodel_server.py").read_text() == model_class_source()
    assert f"FROM {base}@{synthetic_image(DOCKER).digest}" in (context / "Dockerfile").read_text()
    assert "BSL 1.1" in (context / "README.md").read_text()
    build_record = read_provenance(inspect_commit(client, result.build_commit))
    assert build_record.inputs == [f"models@{commit}:/model"]
    assert build_record.extra["seldon_image"] == str(result.image)
    model_record = read_provenance(inspect_commit(client, model))
    assert model_record.extra == {"device": "CPU", "seldon_image": str(result.image)}
    assert model_record.step == "train", "the model's own record is kept"

    found = commit_of_image(str(result.image), plain_http=True)
    assert (found.repo, found.commit) == ("models", commit)
    monkeypatch.setenv("KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES", plain.host)
    assert commit_or_image(f"{target}:{commit}") == found
    assert commit_or_image(f"models@{commit}") == CommitRef("models", commit=commit)
    with pytest.raises(KfpPachydermError, match="was not built by kfp-pachyderm"):
        commit_of_image(f"{plain.host}/{BASE_REPO}:1.0")
    graph = trace(client, found)
    assert f"default/mnist@{data.commit}" in graph.nodes
    assert f"default/mnist@{data.commit}" in trace(client, result.build_commit).nodes

    offset = plain.log_offset()
    again = build_seldon_image(
        client, model, target, BuildOptions(base_image=base, plain_http=True)
    )
    assert again.push.digest == result.push.digest and again.image == result.image
    assert again.push.sent_nothing and again.reused_context
    assert again.build_commit == result.build_commit
    assert plain.writes_since(offset) == [], "a rerun sends nothing to the registry"


def test_an_oci_index_base_gives_an_oci_image(client: Client, plain: Registry, tmp_path: Path):
    _, model = commit_model(client, fake_saved_model(tmp_path / "model", seed=2))
    base = f"{plain.host}/base/multi:1.0"
    result = build_seldon_image(
        client, model, f"{plain.host}/models/oci", BuildOptions(base_image=base, plain_http=True)
    )
    pinned = f"{result.image.name}@{result.push.digest}"  # skopeo 1.9 takes no tag with a digest
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{pinned}").stdout
    manifest = json.loads(raw)
    amd64 = synthetic_image(OCI, "amd64", seed=3)
    assert manifest["mediaType"] == OCI.manifest
    assert manifest["config"]["mediaType"] == OCI.config
    assert manifest["layers"][-1]["mediaType"] == OCI.layer_gzip
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == amd64.digest
    assert manifest["layers"][:-1] == json.loads(amd64.manifest)["layers"]
    assert skopeo_inspect(pinned)["Architecture"] == "amd64"


def test_a_base_in_another_registry_is_copied_with_its_credentials(
    client: Client, plain: Registry, basic: Registry, tmp_path: Path, monkeypatch
):
    docker = write_docker_config(tmp_path / "docker", {basic.host: basic_auth_entry()})
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    from kfp_pachyderm.oci.registry import client_for

    base_image = synthetic_image(OCI, seed=4)
    push_synthetic(client_for(basic.host, plain_http=True), "private/base", "2", base_image)
    _, model = commit_model(client, fake_saved_model(tmp_path / "model", seed=4))
    result = build_seldon_image(
        client,
        model,
        f"{plain.host}/models/copied",
        BuildOptions(base_image=f"{basic.host}/private/base:2", plain_http=True),
    )
    assert sorted(result.push.copied) == sorted(digest_of(gz) for gz, _ in base_image.layers)
    assert skopeo_inspect(f"{result.image.name}:{model.commit}")["Digest"] == result.push.digest


def test_bad_input_fails_before_anything_is_written(
    client: Client, plain: Registry, basic: Registry, tmp_path: Path
):
    _, model = commit_model(client, fake_saved_model(tmp_path / "model"))
    base = f"{plain.host}/{BASE_REPO}:1.0"
    builds = CommitRef("seldon-builds").pfs_repo()

    with pytest.raises(KfpPachydermError, match="must name a repository only"):
        build_seldon_image(
            client,
            model,
            f"{plain.host}/models/m:v1",
            BuildOptions(base_image=base, plain_http=True),
        )
    with pytest.raises(ImageNotFoundError) as err:
        build_seldon_image(
            client,
            model,
            f"{plain.host}/models/m",
            BuildOptions(base_image=f"{plain.host}/base/none:9", plain_http=True),
        )
    assert f"{plain.host}/base/none:9" in str(err.value)
    with pytest.raises(RegistryAuthError) as err:
        build_seldon_image(
            client, model, f"{basic.host}/models/m", BuildOptions(base_image=base, plain_http=True)
        )
    assert err.value.status == 401 and f"{basic.host}/models/m" in str(err.value)
    with pytest.raises(KfpPachydermError, match="no saved_model.pb"):
        build_seldon_image(
            client,
            model.with_path("/model/variables"),
            f"{plain.host}/models/m",
            BuildOptions(base_image=base, plain_http=True),
        )
    ensure_repo(client, CommitRef("open"))
    opened = client.pfs.start_commit(branch=CommitRef("open").pfs_branch())
    with pytest.raises(KfpPachydermError, match="is not finished"):
        build_seldon_image(
            client,
            CommitRef("open", commit=opened.id),
            f"{plain.host}/models/m",
            BuildOptions(base_image=base, plain_http=True),
        )
    assert not client.pfs.repo_exists(builds), "the first four failed before committing"


def test_pull_only_credentials_fail_before_the_build_context_is_committed(
    client: Client, plain: Registry, bearer: Registry, tmp_path: Path, monkeypatch
):
    entry = basic_auth_entry(READER, READER_PASSWORD)
    monkeypatch.setenv(
        "DOCKER_CONFIG", str(write_docker_config(tmp_path / "d", {bearer.host: entry}))
    )
    _, model = commit_model(client, fake_saved_model(tmp_path / "model", seed=6))
    with pytest.raises(RegistryAuthError, match="lack the pull or push access") as err:
        build_seldon_image(
            client,
            model,
            f"{bearer.host}/models/m",
            BuildOptions(base_image=f"{plain.host}/{BASE_REPO}:1.0", plain_http=True),
        )
    assert f"{bearer.host}/models/m" in str(err.value)
    assert not client.pfs.repo_exists(CommitRef("seldon-builds").pfs_repo())


def test_a_failed_push_leaves_no_tag(client: Client, plain: Registry, tmp_path: Path):
    registry = RegistryClient(plain.host, plain_http=True)
    broken = synthetic_image(DOCKER, seed=5)
    push_synthetic(registry, "base/broken", "1", broken)
    missing = digest_of(broken.layers[1][0])
    registry.delete_blob("base/broken", missing)
    _, model = commit_model(client, fake_saved_model(tmp_path / "model", seed=5))
    target = f"{plain.host}/models/broken"
    with pytest.raises(BlobUnknownError) as err:
        build_seldon_image(
            client,
            model,
            target,
            BuildOptions(base_image=f"{plain.host}/base/broken:1", plain_http=True),
        )
    assert missing in str(err.value) and f"{plain.host}/base/broken" in str(err.value)
    assert registry.manifest_digest("models/broken", model.commit) is None
    assert skopeo("inspect", "--tls-verify=false", f"docker://{target}:{model.commit}",
                  check=False).returncode != 0  # fmt: skip


@pytest.mark.slow
def test_the_component_runs_under_kfp_local(tmp_path: Path, plain: Registry, monkeypatch):
    from kfp_pachyderm.components.build_seldon_image.component import build_seldon_image as comp

    with LocalPachyderm(tmp_path / "pfs") as server:
        monkeypatch.setenv("PACHD_ADDRESS", server.address)
        client = Client.from_pachd_address(server.address)
        _, model = commit_model(client, fake_saved_model(tmp_path / "model", seed=6))
        local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
        task = comp(
            model_ref=f"models@{model.commit}",
            image=f"{plain.host}/models/component",
            base_image=f"{plain.host}/{BASE_REPO}:1.0",
            plain_http=True,
            kfp_run_id="run-1",
        )
        image = ImageRef.parse(task.outputs["Output"])
        assert image.tag == model.commit and image.digest
        build = task.outputs["commit"]
        assert build.metadata["image"] == str(image) and build.uri.startswith("pfs://default/")
        served = Path(task.outputs["seldon_deployment"].path).read_text()
        assert f"image: {image}" in served and "machinelearning.seldon.io/v1" in served
        prepackaged = Path(task.outputs["tfserving_deployment"].path).read_text()
        assert "TENSORFLOW_SERVER" in prepackaged and "s3://" in prepackaged
        record = read_provenance(inspect_commit(client, CommitRef.parse(build.uri)))
        assert record.kfp_run_id == "run-1"


# --- manifests -------------------------------------------------------------------------------


def test_seldon_deployments_and_the_rclone_secret():
    commit = "0123456789ab4def0123456789abcdef"
    model = CommitRef("models", commit=commit, path="/model")
    image = ImageRef.parse(f"registry.example.com/ml/mnist:{commit}@sha256:" + "c" * 64)
    served = image_deployment("mnist", image, model, "serving")
    assert served["apiVersion"] == "machinelearning.seldon.io/v1"
    assert served["kind"] == "SeldonDeployment" and served["metadata"]["namespace"] == "serving"
    assert served["metadata"]["labels"]["kfp-pachyderm/model-commit"] == commit
    predictor = served["spec"]["predictors"][0]
    assert predictor["componentSpecs"][0]["spec"]["containers"][0]["image"] == str(image)
    assert predictor["graph"]["type"] == "MODEL"
    with pytest.raises(KfpPachydermError, match="deploy images by digest"):
        image_deployment("mnist", image.with_tag(commit), model)
    with pytest.raises(KfpPachydermError, match="invalid SeldonDeployment name 'Bad_Name'"):
        image_deployment("Bad_Name", image, model)

    build = CommitRef("seldon-builds", branch="master", commit="1" * 12 + "4" + "2" * 19)
    prepackaged = tfserving_deployment("mnist", build, model)
    graph = prepackaged["spec"]["predictors"][0]["graph"]
    assert graph["implementation"] == "TENSORFLOW_SERVER"
    assert graph["modelUri"] == f"s3://{build.commit}.master.seldon-builds/model"
    assert graph["envSecretRefName"] == "pachyderm-s3"
    assert {p["name"]: p["value"] for p in graph["parameters"]}["model_input"] == "image"
    secret = s3_gateway_secret("pachyderm-s3", "http://pachd.pachyderm:30600", "tok")
    assert secret["stringData"]["RCLONE_CONFIG_S3_ENDPOINT"] == "http://pachd.pachyderm:30600"
    plain = s3_gateway_secret("s", "pachd:30600")["stringData"]
    assert plain["RCLONE_CONFIG_S3_ENDPOINT"] == "http://pachd:30600"
    with pytest.raises(KfpPachydermError, match="'ftp://pachd:30600' is invalid"):
        s3_gateway_secret("s", "ftp://pachd:30600")


def test_the_dockerfile_builder_job_is_rootless_buildkit():
    context = CommitRef("seldon-builds", commit="0123456789ab4def0123456789abcdef")
    destination = ImageRef.parse("registry.example.com/ml/custom:v1")
    job = dockerfile_build_job(context, destination, "build-custom", "kubeflow",
                               token_secret="pachd-token")  # fmt: skip
    spec = job["spec"]["template"]["spec"]
    (build,) = spec["containers"]
    (fetch,) = spec["initContainers"]
    assert build["image"] == BUILDKIT_IMAGE and build["command"] == ["buildctl-daemonless.sh"]
    assert f"type=image,name={destination},push=true" in build["args"]
    assert build["securityContext"]["runAsUser"] == 1000
    assert "privileged" not in json.dumps(job)
    assert fetch["command"][-2:] == [str(context), "/workspace"]
    assert {"name": "PACHD_ADDRESS", "value": "grpc://pachd.pachyderm:30650"} in fetch["env"]
    assert any(v.get("secret", {}).get("secretName") == "pachd-token" for v in spec["volumes"])
    assert job["metadata"]["namespace"] == "kubeflow" and spec["restartPolicy"] == "Never"
    with pytest.raises(KfpPachydermError, match="names no commit ID"):
        dockerfile_build_job(CommitRef("seldon-builds"), destination, "b")
    with pytest.raises(KfpPachydermError, match="must name a tag"):
        dockerfile_build_job(context, destination.with_digest("sha256:" + "a" * 64), "b")
