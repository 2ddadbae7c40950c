"""Real OCI registries on loopback for the tests, and what they need around them.

- :func:`require_registry_tools` checks for Debian's ``docker-registry`` (the CNCF
  Distribution registry), ``skopeo`` and ``htpasswd`` (``apache2-utils``); ``bash scripts/dev.sh
  test`` installs them before pytest starts (a failure under CI when one is missing, a skip
  elsewhere).
- :class:`Registry` runs ``docker-registry serve`` on a free port with its own storage
  directory and config (plain HTTP; basic auth from an htpasswd file; or bearer tokens from a
  :class:`TokenServer`), reads its access log, and stops it by PID.
- :class:`TokenServer` is a real Distribution token service: it checks basic credentials or a
  refresh token and signs ES256 JWTs whose ``x5c`` certificate the registry trusts.
- Synthetic base images (Docker schema 2 pushed with the library's client; a two-platform OCI
  index written as an OCI layout and pushed with ``skopeo copy``), and ``skopeo`` itself.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import random
import secrets
import shutil
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from kfp_pachyderm.oci.media import OCI, MediaTypes
from kfp_pachyderm.oci.reference import digest_of
from kfp_pachyderm.oci.registry import RegistryClient

from .conftest import free_port, missing_prerequisite
from .json_http import JsonHandler

# The base image repository the plain registry fixture holds (synthetic, tag 1.0).
BASE_REPO = "base/seldon"

TOOLS = {"docker-registry": "docker-registry", "skopeo": "skopeo", "htpasswd": "apache2-utils"}
USER, PASSWORD = "alice", "wonderland-7"
READER, READER_PASSWORD = "reader", "reader-pass"  # may pull, never push
IDENTITY_TOKEN = "refresh-token-for-alice"


def require_registry_tools() -> None:
    """Check that the registry, skopeo and htpasswd are installed (``bash scripts/dev.sh
    test`` installs them with apt-get): a failure under CI when one is missing, a skip
    elsewhere."""
    missing = sorted(binary for binary in TOOLS if shutil.which(binary) is None)
    if missing:
        packages = " ".join(sorted({TOOLS[binary] for binary in missing}))
        missing_prerequisite(
            f"{', '.join(missing)} not installed: bash scripts/dev.sh test installs them "
            f"(apt-get install {packages})"
        )


@dataclass(frozen=True)
class _Signer:
    """An ES256 key and its self-signed certificate, for the registry to trust."""

    key: object
    cert_pem: bytes
    cert_der: bytes

    @classmethod
    def create(cls) -> _Signer:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token issuer")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(
            key,
            cert.public_bytes(serialization.Encoding.PEM),
            cert.public_bytes(serialization.Encoding.DER),
        )

    def jwt(self, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(
            self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class TokenServer:
    """A Distribution token service: ``GET /token`` with basic credentials (or none: an
    anonymous token with no access) and ``POST /token`` with an OAuth2 refresh token.

    By default USER may pull and push and READER only pull; ``read_only`` users get pull but
    never push. ``requests`` counts token requests.
    """

    service = "test-registry"
    issuer = "test-issuer"

    def __init__(
        self,
        users: dict[str, str] | None = None,
        read_only: frozenset[str] = frozenset({READER}),
    ):
        self.users = users or {USER: PASSWORD, READER: READER_PASSWORD}
        self.read_only = read_only
        self.signer = _Signer.create()
        self.requests = 0
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                server.requests += 1
                query = parse_qs(urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self._reply(401, {"details": "bad credentials"})
                        return
                    user = name
                self._reply(200, server.issue(user, query.get("scope", [])))

            def do_POST(self) -> None:
                server.requests += 1
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("refresh_token") != [IDENTITY_TOKEN]:
                    self._reply(401, {"details": "bad refresh token"})
                    return
                scopes = " ".join(form.get("scope", [])).split()
                self._reply(200, {"access_token": server.issue(USER, scopes)["token"]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def issue(self, user: str | None, scopes: list[str]) -> dict:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [] if user is None else actions.split(",")
            if user in self.read_only:
                granted = [a for a in granted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        return {"token": self.signer.jwt(claims), "expires_in": 300}

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Registry:
    """``docker-registry serve`` on a free loopback port: ``auth`` is None (plain HTTP, no
    auth), ``"htpasswd"`` (basic) or a :class:`TokenServer` (bearer)."""

    def __init__(self, root: Path, auth: str | TokenServer | None = None):
        self.root = root
        self.auth = auth
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = root / "registry.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def config(self) -> dict:
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "kfp-pachyderm-tests"},
        }
        if self.auth == "htpasswd":
            users = self.root / "htpasswd"
            line = subprocess.run(
                ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
            ).stdout
            users.write_text(line.strip() + "\n")
            config["auth"] = {"htpasswd": {"realm": "test-registry", "path": str(users)}}
        elif isinstance(self.auth, TokenServer):
            bundle = self.root / "token-cert.pem"
            bundle.write_bytes(self.auth.signer.cert_pem)
            config["auth"] = {
                "token": {
                    "realm": self.auth.realm,
                    "service": self.auth.service,
                    "issuer": self.auth.issuer,
                    "rootcertbundle": str(bundle),
                }
            }
        return config

    def start(self) -> Registry:
        self.root.mkdir(parents=True, exist_ok=True)
        config_path = self.root / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process writes it
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            # Refused, or a slow first answer (read timeout): not yet, until the deadline.
            probe = max(0.1, min(2, deadline - time.monotonic()))
            try:
                answer = requests.get(f"http://{self.host}/v2/", timeout=probe)
                if answer.status_code in (200, 401):
                    return self
            except (requests.ConnectionError, requests.Timeout):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"docker-registry did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_offset(self) -> int:
        """Where the access log ends now; pass it to :meth:`writes_since`."""
        return self.log_path.stat().st_size

    def writes_since(self, offset: int) -> list[str]:
        """The access-log lines of requests that send data (POST, PUT, PATCH) after ``offset``."""
        time.sleep(0.2)  # the registry writes its access log asynchronously
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return [
            line
            for line in text.splitlines()
            if any(f'"{method} /v2/' in line for method in ("POST", "PUT", "PATCH"))
        ]


def write_docker_config(directory: Path, auths: dict[str, dict]) -> Path:
    """A docker ``config.json`` in ``directory`` with ``auths``; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"auths": auths}))
    return directory


def basic_auth_entry(user: str = USER, password: str = PASSWORD) -> dict:
    """An ``auths`` entry as ``docker login`` writes it."""
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run skopeo (with no ambient auth file) and return the finished process."""
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{result.stderr}")
    return result


def skopeo_inspect(image: str, *extra: str) -> dict:
    """``skopeo inspect`` of an image on a plain-HTTP registry, as JSON."""
    return json.loads(skopeo("inspect", "--tls-verify=false", *extra, f"docker://{image}").stdout)


@dataclass(frozen=True)
class SyntheticImage:
    """An image's blobs, written by these helpers rather than by the code under test."""

    family: MediaTypes
    config: bytes
    layers: list[tuple[bytes, str]]  # (gzip bytes, diff_id)
    manifest: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def _tar_gz(files: dict[str, bytes]) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def synthetic_image(
    family: MediaTypes, architecture: str = "amd64", layer_bytes: int = 200_000, seed: int = 0
) -> SyntheticImage:
    """A two-layer base image with a Seldon-like config (Env, Cmd, Labels, history); the second
    layer holds ``layer_bytes`` of incompressible bytes, the same for the same arguments."""
    payload = random.Random(f"{seed}-{architecture}").randbytes(layer_bytes)
    layers = [
        _tar_gz({"etc/base-release": f"synthetic base {architecture}\n".encode()}),
        _tar_gz({"opt/payload.bin": payload}),
    ]
    config = {
        "architecture": architecture,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "MODEL_NAME=savedmodel_server.SavedModelServer",
            ],
            "Cmd": ["/bin/sh", "-c", "exec seldon-core-microservice $MODEL_NAME"],
            "WorkingDir": "/microservice",
            "Labels": {"org.opencontainers.image.title": "synthetic seldon base"},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(2)
        ],
    }
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": family.manifest,
        "config": {
            "mediaType": family.config,
            "digest": digest_of(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": family.layer_gzip, "digest": digest_of(gz), "size": len(gz)}
            for gz, _ in layers
        ],
    }
    return SyntheticImage(family, config_bytes, layers, json.dumps(manifest).encode())


def push_synthetic(client: RegistryClient, repository: str, tag: str, image: SyntheticImage) -> str:
    """Push ``image``'s blobs and manifest; return the manifest digest."""
    for gz, _ in image.layers:
        client.upload_blob(repository, digest_of(gz), gz, len(gz))
    client.upload_blob(repository, digest_of(image.config), image.config, len(image.config))
    return client.put_manifest(repository, tag, image.manifest, image.family.manifest)


def write_oci_layout(directory: Path, tag: str, images: dict[str, SyntheticImage]) -> Path:
    """An OCI image layout whose index ``tag`` lists ``images`` by architecture (a multi-arch
    image, as ``skopeo copy --all oci:DIR:TAG`` pushes it)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = digest_of(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    entries = []
    for architecture, image in images.items():
        for gz, _ in image.layers:
            put(gz)
        put(image.config)
        entries.append(
            {
                "mediaType": OCI.manifest,
                "digest": put(image.manifest),
                "size": len(image.manifest),
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    index = {"schemaVersion": 2, "mediaType": OCI.index, "manifests": entries}
    nested = put(json.dumps(index).encode())
    top = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI.index,
                "digest": nested,
                "size": len(json.dumps(index).encode()),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(top))
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return directory


def get_blob(registry: Registry, repository: str, digest: str) -> bytes:
    """A blob as the registry serves it, checked against its digest."""
    response = requests.get(f"http://{registry.host}/v2/{repository}/blobs/{digest}", timeout=30)
    response.raise_for_status()
    assert digest_of(response.content) == digest
    return response.content
