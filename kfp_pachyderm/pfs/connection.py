"""Finding and connecting to Pachyderm, the same way in a notebook, a laptop and a pipeline pod.

The address comes from, in order: an explicit argument, ``PACHD_ADDRESS`` (``grpc://``,
``grpcs://`` or ``host:port``; the SDK itself does not read it), the pachctl config file
(``$PACH_CONFIG`` or ``~/.pachyderm/config.json``), and in-cluster service variables
(``PACHD_PEER_SERVICE_HOST``/``_PORT``). The token comes from an explicit argument,
``PACH_PYTHON_AUTH_TOKEN``, or a mounted secret file (``KFP_PACHYDERM_TOKEN_FILE``, default
:data:`DEFAULT_TOKEN_FILE`). Tokens are never logged or put into error messages: messages say
where a token came from, never what it is.

Example:
    >>> client = connect("grpc://localhost:30650")          # doctest: +SKIP
    >>> client = connect()  # PACHD_ADDRESS, then pachctl config, then in-cluster
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs
from pachyderm_sdk.constants import (
    AUTH_TOKEN_ENV,
    CONFIG_PATH_LOCAL,
    PACH_CONFIG_ENV,
    PACHD_SERVICE_HOST_ENV,
    PACHD_SERVICE_PORT_ENV,
)

from kfp_pachyderm.errors import ConnectionSettingsError

log = logging.getLogger(__name__)

ADDRESS_ENV = "PACHD_ADDRESS"
TOKEN_FILE_ENV = "KFP_PACHYDERM_TOKEN_FILE"
DEFAULT_TOKEN_FILE = Path("/var/run/secrets/kfp-pachyderm/pachd-token")
SCHEMES = ("grpc", "grpcs", "http", "https")


@dataclass(frozen=True)
class Settings:
    """Where to connect and with which token; ``token_source`` says where it came from."""

    address: str | None
    address_source: str
    token: str | None
    token_source: str | None

    def __repr__(self) -> str:
        token = "<none>" if self.token is None else f"<from {self.token_source}>"
        return f"Settings(address={self.address!r} ({self.address_source}), token={token})"


def check_address(address: str, source: str) -> str:
    """Validate a pachd address; return it with an explicit scheme."""
    full = address if "://" in address else f"grpc://{address}"
    parsed = urlparse(full)
    valid = (
        parsed.scheme in SCHEMES
        and parsed.hostname
        and not (parsed.path or parsed.query or parsed.fragment or parsed.username)
    )
    try:
        port = parsed.port
    except ValueError:
        port = None
        valid = False
    if not valid or port is None:
        raise ConnectionSettingsError(
            f"invalid pachd address {address!r} (from {source}): expected host:port, "
            "grpc://host:port or grpcs://host:port"
        )
    return full


def resolve_token(token: str | None = None) -> tuple[str | None, str | None]:
    """The pachd token and where it came from: the argument, else the environment, else the
    token file (mounted from a Kubernetes Secret in a pod); (None, None) when there is none."""
    token_source = "the token argument" if token else None
    if not token and os.environ.get(AUTH_TOKEN_ENV):
        token, token_source = os.environ[AUTH_TOKEN_ENV], AUTH_TOKEN_ENV
    if not token:
        token_file = Path(os.environ.get(TOKEN_FILE_ENV) or DEFAULT_TOKEN_FILE)
        if os.environ.get(TOKEN_FILE_ENV) and not token_file.is_file():
            raise ConnectionSettingsError(
                f"token file {str(token_file)!r} (from {TOKEN_FILE_ENV}) does not exist"
            )
        if token_file.is_file():
            token, token_source = token_file.read_text().strip() or None, str(token_file)
    return token, token_source


def resolve_settings(address: str | None = None, token: str | None = None) -> Settings:
    """Work out address and token from arguments, environment, config file and cluster."""
    token, token_source = resolve_token(token)
    if address:
        return Settings(
            check_address(address, "the address argument"), "argument", token, token_source
        )
    if os.environ.get(ADDRESS_ENV):
        return Settings(
            check_address(os.environ[ADDRESS_ENV], ADDRESS_ENV), ADDRESS_ENV, token, token_source
        )
    config = Path(os.environ.get(PACH_CONFIG_ENV) or CONFIG_PATH_LOCAL).expanduser()
    if config.is_file():
        return Settings(None, f"pachctl config {config}", token, token_source)
    if os.environ.get(PACHD_SERVICE_HOST_ENV) and os.environ.get(PACHD_SERVICE_PORT_ENV):
        return Settings(None, "in-cluster", token, token_source)
    raise ConnectionSettingsError(
        f"no Pachyderm address: set {ADDRESS_ENV} (for example grpc://localhost:30650), pass an "
        f"address, create a pachctl config at {config}, or run inside the cluster "
        "(PACHD_PEER_SERVICE_HOST); for a local server run `kfp-pachyderm local serve`"
    )


def connect(address: str | None = None, token: str | None = None, verify: bool = True) -> Client:
    """A pachyderm_sdk Client for the resolved settings; with ``verify``, one round trip
    proves the address is reachable and the token is accepted before any work starts."""
    settings = resolve_settings(address, token)
    if settings.address is not None:
        client = Client.from_pachd_address(settings.address, auth_token=settings.token)
    elif settings.address_source == "in-cluster":
        client = Client.new_in_cluster(auth_token=settings.token)
    else:
        config = settings.address_source.removeprefix("pachctl config ")
        try:
            client = Client.from_config(config)
        except Exception as err:
            raise ConnectionSettingsError(f"cannot read pachctl config {config}: {err}") from err
        if settings.token:
            client.auth_token = settings.token
    where = f"pachd at {client.address} (from {settings.address_source})"
    if verify:
        _verify(client, where, settings)
    log.debug("connected to %s", where)
    return client


def _listening(address: str) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def _verify(client: Client, where: str, settings: Settings) -> None:
    try:
        client.pfs.inspect_project(project=pfs.Project(name="default"))
    except ConnectionError as err:
        if (settings.address or "").startswith("grpcs://") and _listening(client.address):
            raise ConnectionSettingsError(
                f"{where} accepts connections but the TLS handshake failed: if it serves plain "
                f"text (as the local server does), use grpc://{client.address}"
            ) from err
        raise ConnectionSettingsError(f"cannot reach {where}: is it running?") from err
    except grpc.RpcError as err:
        code = err.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            raise ConnectionSettingsError(f"cannot reach {where}: {err.details()}") from err
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            source = settings.token_source or "nowhere (no token was found)"
            raise ConnectionSettingsError(
                f"{where} rejected the token from {source}: {err.details()}"
            ) from err
        if code != grpc.StatusCode.NOT_FOUND:
            raise
