"""Shared fixtures: a real local Pachyderm server on a real socket, and real SDK clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pytest
from kfp import local
from pachyderm_sdk import Client

from kfp_pachyderm.local.server import LocalPachyderm

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO_ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "kfp_pachyderm.cli"]


@pytest.fixture
def server(tmp_path: Path):
    """A local Pachyderm server in this process, on a free loopback port."""
    with LocalPachyderm(tmp_path / "pfs") as srv:
        yield srv


@pytest.fixture
def client(server: LocalPachyderm) -> Client:
    """The real pachyderm_sdk client, connected over gRPC to ``server``."""
    return Client.from_pachd_address(server.address)


@pytest.fixture
def kfp_local(tmp_path: Path, monkeypatch):
    """kfp.local in subprocess mode, with PACHD_ADDRESS pointing at a real local server."""
    with LocalPachyderm(tmp_path / "pfs") as server:
        monkeypatch.setenv("PACHD_ADDRESS", server.address)
        local.init(
            runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root")
        )
        yield Client.from_pachd_address(server.address)


@pytest.fixture(autouse=True)
def _no_ambient_pachyderm(monkeypatch, tmp_path: Path):
    """Tests see no pachd settings from the machine they run on."""
    for var in (
        "PACHD_ADDRESS",
        "PACH_PYTHON_AUTH_TOKEN",
        "PACHD_PEER_SERVICE_HOST",
        "PACHD_PEER_SERVICE_PORT",
        "KFP_PACHYDERM_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PACH_CONFIG", str(tmp_path / "no-pachctl-config.json"))


def missing_prerequisite(message: str) -> NoReturn:
    """Stop a test whose tool or virtualenv is missing: ``scripts/dev.sh test`` provisions them
    before pytest starts, so under CI (``CI=true``) a missing one is a failure; elsewhere the
    test is skipped with ``message``, which names the command that provides it."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def ready_client(address: str, timeout: float = 30.0) -> Client:
    """A client once the server at ``address`` answers. gRPC shares subchannels between
    channels in a process, so right after a restart on the same port a new client can still
    see the old connection's back-off; a real client retries the same way."""
    deadline = time.monotonic() + timeout
    while True:
        client = Client.from_pachd_address(address)
        try:
            client.get_version()
            return client
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def one_error_line(capsys) -> str:
    """The one ``kfp-pachyderm:`` line a refused command wrote to stderr (no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("kfp-pachyderm:")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``kfp-pachyderm local serve`` as a real child process, for kill tests; with an S3
    gateway on ``s3_port`` when given."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        env: dict[str, str] | None = None,
        s3_port: int | None = None,
    ):
        self.data_dir = data_dir
        self.port = port
        self.s3_port = s3_port
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> ServerProcess:
        address_file = self.data_dir.parent / f"address-{self.port}"
        address_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                *CLI,
                "local",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--address-file",
                str(address_file),
                "--create",
                *(["--s3-port", str(self.s3_port)] if self.s3_port else []),
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not address_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self.proc.stdout.read() if self.proc.poll() is not None else ""
                raise RuntimeError(f"local server did not start: {out}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def server_process(tmp_path: Path):
    """A factory of server processes; all are stopped at the end of the test."""
    started: list[ServerProcess] = []

    def make(data_dir: Path | None = None, port: int | None = None, **kwargs) -> ServerProcess:
        proc = ServerProcess(data_dir or tmp_path / "pfs", port or free_port(), **kwargs).start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def tokens():
    """A real Distribution token service (USER may push, READER only pull)."""
    from .registry import TokenServer  # here: .registry imports free_port from this module

    with TokenServer() as server:
        yield server


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    """A real registry on loopback with basic auth (htpasswd)."""
    from .registry import Registry, require_registry_tools

    require_registry_tools()
    with Registry(tmp_path_factory.mktemp("basic"), "htpasswd") as registry:
        yield registry


@pytest.fixture(scope="module")
def bearer(tmp_path_factory, tokens):
    """A real registry on loopback that takes bearer tokens from ``tokens``."""
    from .registry import Registry, require_registry_tools

    require_registry_tools()
    with Registry(tmp_path_factory.mktemp("bearer"), tokens) as registry:
        yield registry


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A real registry on loopback without auth, holding the synthetic base image
    ``BASE_REPO:1.0`` (Docker schema 2) and ``base/multi:1.0`` (an OCI index)."""
    from kfp_pachyderm.oci.media import DOCKER, OCI
    from kfp_pachyderm.oci.registry import RegistryClient

    from .registry import (
        BASE_REPO,
        Registry,
        push_synthetic,
        require_registry_tools,
        skopeo,
        synthetic_image,
        write_oci_layout,
    )

    require_registry_tools()
    with Registry(tmp_path_factory.mktemp("plain")) as registry:
        client = RegistryClient(registry.host, plain_http=True)
        push_synthetic(client, BASE_REPO, "1.0", synthetic_image(DOCKER))
        layout = write_oci_layout(
            tmp_path_factory.mktemp("layout"),
            "1.0",
            {arch: synthetic_image(OCI, arch, seed=3) for arch in ("arm64", "amd64")},
        )
        skopeo("copy", "--all", "--insecure-policy", "--dest-tls-verify=false",
               f"oci:{layout}:1.0", f"docker://{registry.host}/base/multi:1.0")  # fmt: skip
        yield registry
