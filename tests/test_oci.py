"""The OCI Distribution client against real registries on loopback: Debian's docker-registry with
no auth, with basic auth (htpasswd) and with bearer tokens from a real token service."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
import requests

from kfp_pachyderm.oci.credentials import Credentials, docker_config_path, load_credentials
from kfp_pachyderm.oci.errors import (
    BlobUnknownError,
    ImageNotFoundError,
    RegistryAuthError,
    RegistryError,
)
from kfp_pachyderm.oci.media import DOCKER, OCI, select_platform
from kfp_pachyderm.oci.reference import ImageRef, digest_of, is_image_reference
from kfp_pachyderm.oci.registry import RegistryClient, client_for
from kfp_pachyderm.validation import InvalidImageReference

from .registry import (
    IDENTITY_TOKEN,
    PASSWORD,
    READER,
    READER_PASSWORD,
    USER,
    Registry,
    TokenServer,
    basic_auth_entry,
    push_synthetic,
    require_registry_tools,
    skopeo,
    skopeo_inspect,
    synthetic_image,
    write_docker_config,
    write_oci_layout,
)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    require_registry_tools()
    with Registry(tmp_path_factory.mktemp("plain")) as registry:
        yield registry


@pytest.fixture(autouse=True)
def _no_ambient_docker_config(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.delenv("KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES", raising=False)


ALICE = Credentials(USER, PASSWORD, source="the test")


# --- references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("index.docker.io/seldonio/seldon-core-operator:1.18.2", "docker.io",
         "seldonio/seldon-core-operator", "1.18.2", None),
        ("localhost:5000/ml/mnist", "localhost:5000", "ml/mnist", None, None),
        ("127.0.0.1:5000/ml/mnist:0123456789ab4def0123456789abcdef", "127.0.0.1:5000", "ml/mnist",
         "0123456789ab4def0123456789abcdef", None),
        ("docker://ghcr.io/org/img@sha256:" + "a" * 64, "ghcr.io", "org/img", None,
         "sha256:" + "a" * 64),
        ("registry.example.com/a/b:v1@sha256:" + "b" * 64, "registry.example.com", "a/b", "v1",
         "sha256:" + "b" * 64),
    ],
)  # fmt: skip
def test_image_references_parse_as_docker_does(text, registry, repository, tag, digest):
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert ImageRef.parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "empty image reference"),
        ("localhost:5000/ML/Upper", "'ML/Upper'"),
        ("localhost:5000/ml/x:-bad", "'-bad'"),
        ("localhost:5000/ml/x@sha256:abc", "'sha256:abc'"),
        ("bad.host:port/ml/x", "'bad.host:port'"),
    ],
)
def test_bad_image_references_name_the_bad_part(text, named):
    with pytest.raises(InvalidImageReference, match="invalid|empty") as err:
        ImageRef.parse(text)
    assert named in str(err.value)


COMMIT_ID = "0123456789ab4def0123456789abcdef"
IMAGES = ("localhost:5000/ml/mnist:abc", "registry.example.com/a", "docker://ubuntu")
COMMITS = ("model@master", "images@master:/train", f"proj/model@{COMMIT_ID}", "repo:/x.y")


def test_image_references_are_told_from_commit_references():
    for image in (*IMAGES, "ml/mnist@sha256:" + "a" * 64):
        assert is_image_reference(image), image
    for commit in (*COMMITS, f"pfs://default/model@{COMMIT_ID}:/a.b/c"):
        assert not is_image_reference(commit), commit


# --- credentials ----------------------------------------------------------------------------


def test_credentials_come_from_auths_in_every_key_form(tmp_path: Path):
    config = write_docker_config(
        tmp_path / "a",
        {
            "https://index.docker.io/v1/": basic_auth_entry("hub", "hubpass"),
            "https://registry.example.com/v2/": {"username": "u", "password": "p"},
            "localhost:5000": {"identitytoken": "refresh"},
        },
    )
    hub = load_credentials("docker.io", config)
    assert (hub.username, hub.password) == ("hub", "hubpass")
    assert hub.source == str(config / "config.json")
    example = load_credentials("registry.example.com", config)
    assert (example.username, example.password) == ("u", "p")
    assert load_credentials("localhost:5000", config).identity_token == "refresh"
    assert load_credentials("other.example.com", config) is None
    assert "hubpass" not in repr(hub) and "refresh" not in repr(
        load_credentials("localhost:5000", config)
    )


def test_docker_config_is_found_as_docker_and_kubernetes_put_it(tmp_path: Path, monkeypatch):
    assert docker_config_path() is None
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / ".dockerconfigjson").write_text(json.dumps({"auths": {"r.io": basic_auth_entry()}}))
    assert docker_config_path(secret) == secret / ".dockerconfigjson"
    monkeypatch.setenv("DOCKER_CONFIG", str(secret))
    assert load_credentials("r.io").username == USER
    monkeypatch.delenv("DOCKER_CONFIG")
    home = write_docker_config(tmp_path / "home" / ".docker", {"r.io": basic_auth_entry()})
    assert docker_config_path() == home / "config.json"
    with pytest.raises(RegistryError, match="does not exist"):
        docker_config_path(tmp_path / "missing.json")


def test_a_broken_docker_config_is_named_without_its_contents(tmp_path: Path):
    bad = tmp_path / "config.json"
    bad.write_text('{"auths": {"r.io": {"auth": "c2VjcmV0LXBhc3N3b3Jk"')
    with pytest.raises(RegistryError) as err:
        load_credentials("r.io", bad)
    assert str(bad) in str(err.value) and "c2VjcmV0" not in str(err.value)
    bad.write_text(json.dumps({"auths": {"r.io": {"auth": "!!!not base64!!!"}}}))
    with pytest.raises(RegistryError, match="not base64") as err:
        load_credentials("r.io", bad)
    assert "!!!" not in str(err.value)


def test_credential_helpers_are_run_as_docker_runs_them(tmp_path: Path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-testhelper"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$server" = "r.io" ]; then echo \'{"Username":"helped","Secret":"s3cret"}\'; '
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"credHelpers": {"r.io": "testhelper"}, "credsStore": "testhelper"})
    )
    creds = load_credentials("r.io", config)
    assert (creds.username, creds.password) == ("helped", "s3cret")
    assert load_credentials("other.io", config) is None
    config.write_text(json.dumps({"credsStore": "absent"}))
    with pytest.raises(RegistryError, match="docker-credential-absent is not on PATH"):
        load_credentials("r.io", config)


# --- the API against a real registry ----------------------------------------------------------


def test_blobs_manifests_and_mounts_on_a_plain_registry(plain: Registry):
    client = RegistryClient(plain.host, plain_http=True)
    image = synthetic_image(DOCKER)
    digest = push_synthetic(client, "base/a", "1.0", image)
    assert digest == image.digest
    manifest = client.get_manifest("base/a", "1.0")
    assert (manifest.body, manifest.media_type, manifest.digest) == (
        image.manifest,
        DOCKER.manifest,
        digest,
    )
    assert client.get_manifest("base/a", digest).body == image.manifest
    assert client.manifest_digest("base/a", "1.0") == digest
    assert client.manifest_digest("base/a", "2.0") is None
    assert client.get_blob("base/a", manifest.config.digest) == image.config
    layer = manifest.layers[0]
    assert client.mount_blob("models/b", layer.digest, "base/a") is None
    assert client.blob_exists("models/b", layer.digest)
    location = client.mount_blob("models/b", manifest.layers[1].digest, "nowhere/else")
    assert location is not None, "a mount from a repository without the blob opens an upload"
    gz = image.layers[1][0]
    client.upload_blob("models/b", digest_of(gz), gz, len(gz), location)
    assert client.blob_exists("models/b", digest_of(gz))
    inspected = skopeo_inspect(f"{plain.host}/base/a:1.0")
    assert inspected["Digest"] == digest
    assert inspected["Labels"] == {"org.opencontainers.image.title": "synthetic seldon base"}


def test_an_index_written_by_skopeo_gives_the_amd64_image(plain: Registry, tmp_path: Path):
    images = {arch: synthetic_image(OCI, arch) for arch in ("arm64", "amd64")}
    layout = write_oci_layout(tmp_path / "layout", "multi", images)
    skopeo("copy", "--all", "--insecure-policy", "--dest-tls-verify=false",
           f"oci:{layout}:multi", f"docker://{plain.host}/base/multi:1")  # fmt: skip
    client = RegistryClient(plain.host, plain_http=True)
    index = client.get_manifest("base/multi", "1")
    assert index.is_index and index.media_type == OCI.index
    chosen = select_platform(index)
    assert chosen.digest == images["amd64"].digest
    with pytest.raises(
        RegistryError, match=r"no linux/s390x image \(it has linux/arm64, linux/amd64\)"
    ):
        select_platform(index, architecture="s390x")


def test_registry_errors_name_registry_repository_and_reference(plain: Registry):
    client = RegistryClient(plain.host, plain_http=True)
    with pytest.raises(ImageNotFoundError) as err:
        client.get_manifest("base/none", "9.9")
    assert f"{plain.host}/base/none:9.9" in str(err.value)
    assert "MANIFEST_UNKNOWN" in str(err.value) or "NAME_UNKNOWN" in str(err.value)

    image = synthetic_image(DOCKER, seed=7)
    gz = image.layers[0][0]
    client.upload_blob("base/partial", digest_of(gz), gz, len(gz))
    client.upload_blob("base/partial", digest_of(image.config), image.config, len(image.config))
    with pytest.raises(BlobUnknownError) as err:
        client.put_manifest("base/partial", "v1", image.manifest, DOCKER.manifest)
    message = str(err.value)
    assert f"{plain.host}/base/partial:v1" in message and "MANIFEST_BLOB_UNKNOWN" in message
    assert digest_of(image.layers[1][0]) in message and "push every layer" in message
    assert client.manifest_digest("base/partial", "v1") is None

    with pytest.raises(BlobUnknownError, match="BLOB_UNKNOWN"):
        client.get_blob("base/partial", digest_of(b"never uploaded"))
    with pytest.raises(RegistryError, match="DIGEST_INVALID"):
        client.upload_blob("base/partial", digest_of(b"one"), b"two", 3)


def test_unreachable_registry_says_so(plain: Registry):
    client = RegistryClient(plain.host, plain_http=False, timeout=5)
    with pytest.raises(RegistryError, match=f"cannot reach {plain.host}.*plain HTTP"):
        client.ping()


def test_basic_auth_flow(basic: Registry, tmp_path: Path, caplog):
    caplog.set_level(logging.DEBUG)
    anonymous = RegistryClient(basic.host, plain_http=True)
    with pytest.raises(RegistryAuthError) as err:
        anonymous.get_manifest("base/a", "1.0")
    assert err.value.status == 401
    assert f"{basic.host}/base/a:1.0" in str(err.value) and "no credentials" in str(err.value)

    wrong = RegistryClient(basic.host, Credentials(USER, "wrong-password", source="cfg"), True)
    with pytest.raises(RegistryAuthError, match="refused the credentials from cfg"):
        wrong.ping()

    config = write_docker_config(tmp_path / "docker", {basic.host: basic_auth_entry()})
    client = client_for(basic.host, config, plain_http=True)
    image = synthetic_image(DOCKER, seed=1)
    assert push_synthetic(client, "base/a", "1.0", image) == image.digest
    assert client.get_manifest("base/a", "1.0").digest == image.digest
    logged = caplog.text + str(err.value)
    assert PASSWORD not in logged and basic_auth_entry()["auth"] not in logged


def test_bearer_token_flow(bearer: Registry, tokens: TokenServer, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RegistryAuthError) as err:
        RegistryClient(bearer.host, plain_http=True).get_manifest("base/a", "1.0")
    assert err.value.status == 401 and f"{bearer.host}/base/a:1.0" in str(err.value)

    with pytest.raises(RegistryAuthError, match="token service .* refused"):
        RegistryClient(bearer.host, Credentials(USER, "nope", source="cfg"), True).ping()

    client = RegistryClient(bearer.host, ALICE, plain_http=True)
    image = synthetic_image(OCI, seed=2)
    before = tokens.requests
    assert push_synthetic(client, "base/a", "1.0", image) == image.digest
    assert tokens.requests - before == 1, "one token for the repository's pull,push scope"
    manifest = client.get_manifest("base/a", "1.0")
    assert manifest.media_type == OCI.manifest
    assert client.mount_blob("models/m", manifest.layers[0].digest, "base/a") is None

    refreshed = RegistryClient(
        bearer.host, Credentials(identity_token=IDENTITY_TOKEN, source="c"), True
    )
    assert refreshed.get_manifest("base/a", "1.0").digest == image.digest
    assert PASSWORD not in caplog.text and IDENTITY_TOKEN not in caplog.text


def test_pull_only_credentials_are_denied_push(bearer: Registry):
    reader = RegistryClient(bearer.host, Credentials(READER, READER_PASSWORD, source="cfg"), True)
    with pytest.raises(RegistryAuthError, match="lack the pull or push access") as err:
        reader.upload_blob("models/r", digest_of(b"x"), b"x", 1)
    assert f"{bearer.host}/models/r" in str(err.value)
    with pytest.raises(RegistryAuthError, match="lack the pull or push access"):
        reader.check_push("models/r")
    RegistryClient(bearer.host, ALICE, plain_http=True).check_push("models/r")


def test_the_registry_log_shows_writes(plain: Registry):
    offset = plain.log_offset()
    RegistryClient(plain.host, plain_http=True).get_manifest("base/a", "1.0")
    assert plain.writes_since(offset) == []
    assert requests.get(f"http://{plain.host}/v2/", timeout=5).status_code == 200
