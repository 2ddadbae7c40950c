"""Registry credentials from a docker ``config.json``, found as Docker finds it.

The config is an explicit file or directory (a mounted ``kubernetes.io/dockerconfigjson`` Secret
holds ``.dockerconfigjson``), ``$DOCKER_CONFIG/config.json``, or ``~/.docker/config.json``;
``auths`` entries and credential helpers (``credHelpers``, ``credsStore``) are supported.
Credentials are never logged or put into error messages: messages say where credentials came
from, never what they are.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kfp_pachyderm.oci.errors import RegistryError
from kfp_pachyderm.oci.reference import DOCKER_HUB, DOCKER_HUB_ALIASES

DOCKER_CONFIG_ENV = "DOCKER_CONFIG"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    """Registry credentials and where they came from; ``repr`` never shows the secrets."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""

    def __repr__(self) -> str:
        kind = "identity token" if self.identity_token else "username and password"
        return f"Credentials({kind} for {self.username or '<token>'!r} from {self.source})"


def docker_config_path(explicit: str | Path | None = None) -> Path | None:
    """The docker config file to read: ``explicit``, else ``$DOCKER_CONFIG``, else
    ``~/.docker/config.json``; None when there is none (anonymous access).

    ``explicit`` and ``$DOCKER_CONFIG`` may name a directory holding ``config.json`` or
    ``.dockerconfigjson`` (the key of a mounted ``kubernetes.io/dockerconfigjson`` Secret);
    ``explicit`` may also name the file. An explicit path that does not exist is an error.
    """
    if explicit:
        path = Path(explicit)
        if path.is_file():
            return path
        if not path.is_dir():
            raise RegistryError(f"docker config file {path} does not exist")
    elif os.environ.get(DOCKER_CONFIG_ENV):
        path = Path(os.environ[DOCKER_CONFIG_ENV])
    else:
        home = Path.home() / ".docker/config.json"
        return home if home.is_file() else None
    for name in ("config.json", ".dockerconfigjson"):
        if (path / name).is_file():
            return path / name
    if explicit:
        raise RegistryError(
            f"docker config directory {path} holds neither config.json nor .dockerconfigjson"
        )
    return None


def _auth_key_host(key: str) -> str:
    if "://" in key:
        key = urlsplit(key).netloc
    host = key.split("/", 1)[0]
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def _helper_server_url(registry: str) -> str:
    return DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry


def _from_helper(helper: str, registry: str, source: str) -> Credentials | None:
    program = f"docker-credential-{helper}"
    if shutil.which(program) is None:
        raise RegistryError(
            f"{source} names the credential helper {helper!r} for {registry}, but {program} is "
            "not on PATH"
        )
    result = subprocess.run(
        [program, "get"],
        input=_helper_server_url(registry),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        if "credentials not found" in (result.stdout + result.stderr).lower():
            return None
        raise RegistryError(
            f"credential helper {program} failed for {registry} (exit {result.returncode})"
        )
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise RegistryError(f"credential helper {program} printed no JSON for {registry}") from None
    where = f"{source} (helper {program})"
    if answer.get("Username") == "<token>":
        return Credentials(identity_token=answer.get("Secret", ""), source=where)
    return Credentials(answer.get("Username", ""), answer.get("Secret", ""), source=where)


def _from_auth_entry(entry: dict, registry: str, source: str) -> Credentials:
    username, password = entry.get("username", ""), entry.get("password", "")
    if entry.get("auth"):
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(
                f"the 'auth' value for {registry} in {source} is not base64 of user:password"
            ) from None
    return Credentials(username, password, entry.get("identitytoken", ""), source)


def load_credentials(registry: str, config: str | Path | None = None) -> Credentials | None:
    """The credentials for ``registry`` from a docker config (see :func:`docker_config_path`):
    its credential helper (``credHelpers``), an ``auths`` entry, or the default ``credsStore``;
    None for anonymous access."""
    path = docker_config_path(config)
    if path is None:
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RegistryError(f"cannot read docker config {path}: {type(err).__name__}") from None
    if not isinstance(document, dict):
        raise RegistryError(f"docker config {path} is not a JSON object")
    source = str(path)
    helper = (document.get("credHelpers") or {}).get(registry)
    if helper:
        return _from_helper(helper, registry, source)
    for key, entry in (document.get("auths") or {}).items():
        if _auth_key_host(key) == registry and isinstance(entry, dict) and entry:
            return _from_auth_entry(entry, registry, source)
    if document.get("credsStore"):
        return _from_helper(document["credsStore"], registry, source)
    return None
