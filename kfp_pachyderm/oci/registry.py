"""A client for the OCI Distribution API: read and push images with no Docker daemon.

What a step needs to append a layer to an image in a registry and push the result:
manifests and indexes (OCI and Docker schema 2 media types), blobs (existence checks,
downloads, monolithic uploads, cross-repository mounts), and the registry's two
authentication flows, both driven by the ``WWW-Authenticate`` challenge:

* **basic**: the username and password are sent with every request;
* **bearer token**: a token for the request's scopes is fetched from the challenge's realm
  (with the username and password, an OAuth2 refresh token from ``identitytoken``, or
  anonymously) and cached per scope set.

Credentials come from a docker ``config.json`` (:func:`load_credentials`): an explicit file or
directory (a mounted ``kubernetes.io/dockerconfigjson`` Secret holds ``.dockerconfigjson``),
``$DOCKER_CONFIG/config.json``, or ``~/.docker/config.json``; ``auths`` entries and credential
helpers (``credHelpers``, ``credsStore``) are supported. Credentials and tokens are never
logged or put into error messages: messages say where credentials came from, never what they are.

Registries on plain HTTP (a local ``docker-registry``) are reached with ``plain_http=True`` or by
listing them in ``KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES`` (comma-separated ``host:port``).

Example:
    >>> ref = ImageRef.parse("localhost:5000/ml/mnist:latest")
    >>> (ref.registry, ref.repository, ref.reference)
    ('localhost:5000', 'ml/mnist', 'latest')
    >>> client = RegistryClient(ref.registry, load_credentials(ref.registry))  # doctest: +SKIP
    >>> manifest = client.get_manifest(ref.repository, ref.reference)          # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kfp_pachyderm.errors import KfpPachydermError, NotFoundError

log = logging.getLogger(__name__)

PLAIN_HTTP_ENV = "KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES"
DOCKER_CONFIG_ENV = "DOCKER_CONFIG"
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_ALIASES = {
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
}


@dataclass(frozen=True)
class MediaTypes:
    """The media types of one image format family: OCI, or Docker's schema 2."""

    name: str
    manifest: str
    index: str
    config: str
    layer_gzip: str


OCI = MediaTypes(
    "OCI",
    manifest="application/vnd.oci.image.manifest.v1+json",
    index="application/vnd.oci.image.index.v1+json",
    config="application/vnd.oci.image.config.v1+json",
    layer_gzip="application/vnd.oci.image.layer.v1.tar+gzip",
)
DOCKER = MediaTypes(
    "Docker",
    manifest="application/vnd.docker.distribution.manifest.v2+json",
    index="application/vnd.docker.distribution.manifest.list.v2+json",
    config="application/vnd.docker.container.image.v1+json",
    layer_gzip="application/vnd.docker.image.rootfs.diff.tar.gzip",
)
MANIFEST_TYPES = (OCI.manifest, DOCKER.manifest)
INDEX_TYPES = (OCI.index, DOCKER.index)


def family_of(media_type: str) -> MediaTypes:
    """The family (OCI or Docker) a manifest or index media type belongs to."""
    for family in (OCI, DOCKER):
        if media_type in (family.manifest, family.index):
            return family
    raise RegistryError(
        f"unsupported manifest media type {media_type!r}: expected one of "
        f"{', '.join(MANIFEST_TYPES + INDEX_TYPES)}"
    )


class RegistryError(KfpPachydermError):
    """A registry refused a request or answered something unusable; the message names the
    registry, repository and tag or digest, and the registry's error codes."""

    def __init__(self, message: str, status: int | None = None, codes: tuple[str, ...] = ()):
        super().__init__(message)
        self.status = status
        self.codes = codes


class RegistryAuthError(RegistryError):
    """The registry wants credentials that were missing, wrong, or lack the needed access."""


class ImageNotFoundError(RegistryError, NotFoundError):
    """No manifest with that tag or digest in that repository."""


class BlobUnknownError(RegistryError):
    """A blob is missing: a download of an absent blob, or a manifest naming one
    (``MANIFEST_BLOB_UNKNOWN``)."""


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
_HOST_RE = re.compile(r"^(?:[\w-]+(?:\.[\w-]+)*|\[[0-9a-fA-F:]+\])(?::\d+)?$")


def _looks_like_host(component: str) -> bool:
    return (
        component == "localhost" or "." in component or bool(re.match(r"^[\w.-]+:\d+$", component))
    )


@dataclass(frozen=True)
class ImageRef:
    """An image reference: ``registry/repository[:tag][@digest]``.

    Docker Hub names are normalised as Docker does: ``ubuntu`` is ``docker.io/library/ubuntu``.
    ``reference`` is what the registry API is asked for: the digest if set, else the tag,
    else ``latest``.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if not _HOST_RE.match(self.registry):
            raise RegistryError(f"invalid registry host {self.registry!r} in image reference")
        if not _REPOSITORY_RE.match(self.repository) or len(self.repository) > 255:
            raise RegistryError(
                f"invalid repository name {self.repository!r}: lowercase letters, digits and "
                "separators ('.', '_', '__', '-', '/') only"
            )
        if self.tag is not None and not _TAG_RE.match(self.tag):
            raise RegistryError(
                f"invalid tag {self.tag!r}: up to 128 letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-'"
            )
        if self.digest is not None and not _DIGEST_RE.match(self.digest):
            raise RegistryError(
                f"invalid digest {self.digest!r}: expected sha256:<64 hex> or sha512:<128 hex>"
            )

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse ``[registry/]repository[:tag][@digest]`` (a ``docker://`` prefix is allowed);
        raise RegistryError naming the bad part."""
        if not isinstance(text, str) or not text.strip():
            raise RegistryError(f"empty image reference {text!r}: expected registry/repo[:tag]")
        body = text.strip().removeprefix("docker://")
        digest = None
        if "@" in body:
            body, digest = body.split("@", 1)
        tag = None
        last = body.rsplit("/", 1)[-1]
        if ":" in last:
            body, tag = body.rsplit(":", 1)
        first, _, rest = body.partition("/")
        if rest and _looks_like_host(first):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, body
        if registry in _DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in repository:
                repository = f"library/{repository}"
        try:
            return cls(registry, repository, tag or None, digest or None)
        except RegistryError as err:
            raise RegistryError(f"{err} (in image reference {text!r})") from None

    @property
    def reference(self) -> str:
        """The tag or digest to ask the registry for."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository``."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str | None) -> ImageRef:
        """The same repository with ``tag`` (and no digest)."""
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        """The same reference pinned to ``digest`` (the tag is kept for readers)."""
        return replace(self, digest=digest)


def is_image_reference(text: str) -> bool:
    """Whether ``text`` names an image rather than a Pachyderm commit: a ``docker://`` prefix,
    a digest (``@sha256:``), or a first path part that is a registry host (it has a dot or a
    port, or is ``localhost``), which Pachyderm project names cannot be."""
    text = text.strip()
    if text.startswith("docker://") or "@sha256:" in text or "@sha512:" in text:
        return True
    first, slash, _ = text.partition("/")
    return bool(slash) and _looks_like_host(first)


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: media type, digest and size, plus the platform in an index."""

    media_type: str
    digest: str
    size: int
    platform: dict | None = None

    @classmethod
    def from_json(cls, data: dict) -> Descriptor:
        """A descriptor from its JSON form in a manifest or index."""
        return cls(data["mediaType"], data["digest"], int(data["size"]), data.get("platform"))

    def to_json(self) -> dict:
        """The JSON form, as manifests carry it."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry returned it: exact bytes, media type and digest."""

    body: bytes
    media_type: str
    digest: str

    @property
    def json(self) -> dict:
        """The parsed document."""
        return json.loads(self.body)

    @property
    def is_index(self) -> bool:
        """Whether this is an index (a manifest list) rather than an image manifest."""
        return self.media_type in INDEX_TYPES

    @property
    def config(self) -> Descriptor:
        """The config descriptor of an image manifest."""
        return Descriptor.from_json(self.json["config"])

    @property
    def layers(self) -> list[Descriptor]:
        """The layer descriptors of an image manifest, base first."""
        return [Descriptor.from_json(d) for d in self.json["layers"]]


def select_platform(
    index: Manifest, os_name: str = "linux", architecture: str = "amd64"
) -> Descriptor:
    """The image manifest for ``os_name``/``architecture`` in an index; raise naming the
    platforms the index has when it has no such manifest."""
    found = []
    for entry in index.json.get("manifests", []):
        platform = entry.get("platform") or {}
        found.append(f"{platform.get('os', '?')}/{platform.get('architecture', '?')}")
        if platform.get("os") == os_name and platform.get("architecture") == architecture:
            return Descriptor.from_json(entry)
    raise RegistryError(
        f"the index {index.digest} has no {os_name}/{architecture} image "
        f"(it has {', '.join(found) or 'no manifests'})"
    )


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
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


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


def plain_http_registries() -> set[str]:
    """The registries listed in ``KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES``."""
    return {h.strip() for h in os.environ.get(PLAIN_HTTP_ENV, "").split(",") if h.strip()}


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


def _error_codes(response: requests.Response) -> list[dict]:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return []
    return [e for e in errors if isinstance(e, dict)]


_HINTS = {
    "MANIFEST_BLOB_UNKNOWN": "the manifest names a blob this repository does not have; "
    "push every layer and the config before the manifest",
    "BLOB_UNKNOWN": "the blob is not in this repository",
    "MANIFEST_UNKNOWN": "no such tag or digest in this repository",
    "NAME_UNKNOWN": "no such repository in this registry",
    "DIGEST_INVALID": "the uploaded bytes do not match their digest",
    "DENIED": "the credentials lack the access this needs",
}


class _SizedStream:
    """Chunks of known total size: requests sends them with that Content-Length (a bare
    generator would be sent as chunked transfer encoding, which blob uploads do not take)."""

    def __init__(self, chunks: Iterator[bytes], size: int):
        self._chunks = chunks
        self._size = size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def __len__(self) -> int:
        return self._size


class RegistryClient:
    """The Distribution API of one registry, with its authentication handled.

    Safe to share between threads: transfers of different blobs can run in parallel.
    """

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None = None,
        plain_http: bool | None = None,
        timeout: float = 600.0,
        searched: str = "the docker config",
    ):
        """``searched`` says where credentials were looked for, for messages."""
        if plain_http is None:
            plain_http = registry in plain_http_registries()
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.registry = registry
        self.credentials = credentials
        self.base_url = f"{'http' if plain_http else 'https'}://{host}/v2/"
        self.timeout = timeout
        self.searched = searched
        self._session = requests.Session()
        retries = Retry(
            total=3,
            backoff_factor=0.5,
            allowed_methods={"GET", "HEAD"},
            status_forcelist=(429, 502, 503, 504),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retries, pool_maxsize=16)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._lock = threading.Lock()
        self._basic = False
        self._tokens: dict[tuple[str, ...], str] = {}
        self._bearer: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r}, {self.credentials!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- authentication -------------------------------------------------------------------

    def _auth_header(self, scopes: tuple[str, ...]) -> dict[str, str]:
        with self._lock:
            if self._basic and self.credentials:
                raw = f"{self.credentials.username}:{self.credentials.password}".encode()
                return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
            token = self._tokens.get(scopes)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _authenticate(
        self, response: requests.Response, scopes: tuple[str, ...], what: str
    ) -> None:
        """Answer a 401 challenge: switch to basic auth, or fetch a token for ``scopes``."""
        scheme, params = _challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme == "basic":
            if not self.credentials or not self.credentials.username:
                raise self._auth_error(response, what)
            with self._lock:
                self._basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise self._auth_error(response, what)
        wanted = list(scopes)
        wanted += [s for s in params.get("scope", "").split() if s not in wanted]
        token = self._fetch_token(params["realm"], params.get("service", ""), wanted, what)
        with self._lock:
            self._tokens[scopes] = token

    def _fetch_token(self, realm: str, service: str, scopes: list[str], what: str) -> str:
        creds = self.credentials
        if creds and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "service": service,
                "scope": " ".join(scopes),
                "client_id": "kfp-pachyderm",
            }
            response = self._session.post(realm, data=form, timeout=self.timeout)
        else:
            params = [("service", service)] + [("scope", s) for s in scopes]
            auth = (creds.username, creds.password) if creds and creds.username else None
            response = self._session.get(realm, params=params, auth=auth, timeout=self.timeout)
        if response.status_code in (401, 403):
            raise RegistryAuthError(
                f"{what}: the token service of {self.registry} refused "
                f"{self._whose()} (HTTP {response.status_code}); "
                f"{self._credential_hint()}",
                response.status_code,
            )
        if not response.ok:
            raise RegistryError(
                f"{what}: the token service of {self.registry} answered HTTP "
                f"{response.status_code}",
                response.status_code,
            )
        try:
            body = response.json()
            return body.get("token") or body["access_token"]
        except (ValueError, KeyError):
            raise RegistryError(
                f"{what}: the token service of {self.registry} returned no token"
            ) from None

    def _whose(self) -> str:
        if not self.credentials:
            return "anonymous access"
        return f"the credentials from {self.credentials.source}"

    def _credential_hint(self) -> str:
        if not self.credentials:
            return (
                f"no credentials for {self.registry} in {self.searched}; add them with "
                "`docker login` or mount a kubernetes.io/dockerconfigjson Secret"
            )
        return f"check the credentials for {self.registry} in {self.credentials.source}"

    def _auth_error(self, response: requests.Response, what: str) -> RegistryAuthError:
        codes = tuple(e.get("code", "") for e in _error_codes(response))
        _, challenge = _challenge(response.headers.get("WWW-Authenticate", ""))
        lacks_scope = challenge.get("error") == "insufficient_scope" and self.credentials
        if response.status_code == 403 or "DENIED" in codes or lacks_scope:
            return RegistryAuthError(
                f"{what}: {self.registry} denied access for {self._whose()} (HTTP "
                f"{response.status_code}{', ' + ', '.join(codes) if codes else ''}); the "
                "credentials are valid but lack the pull or push access this needs",
                response.status_code,
                codes,
            )
        return RegistryAuthError(
            f"{what}: {self.registry} requires authentication and refused "
            f"{self._whose()} (HTTP 401); {self._credential_hint()}",
            response.status_code,
            codes,
        )

    # --- requests -------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def _request(
        self,
        method: str,
        url: str,
        scopes: tuple[str, ...],
        what: str,
        ok: tuple[int, ...],
        body: bytes | BinaryIO | Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send one request, answering an auth challenge once; raise a RegistryError that
        says ``what`` was being done unless the status is in ``ok``."""
        start = body.tell() if hasattr(body, "seek") else None
        for attempt in (1, 2):
            all_headers = {**(headers or {}), **self._auth_header(scopes)}
            log.debug("%s %s", method, urlsplit(url).path)
            try:
                response = self._session.request(
                    method,
                    url,
                    data=body,
                    headers=all_headers,
                    stream=stream,
                    params=params,
                    timeout=self.timeout,
                )
            except requests.ConnectionError as err:
                raise RegistryError(
                    f"{what}: cannot reach {self.registry} at {self.base_url} "
                    f"({type(err).__name__}); is it running, and is it plain HTTP "
                    f"(set plain_http or {PLAIN_HTTP_ENV})?"
                ) from None
            if response.status_code != 401 or attempt == 2:
                break
            retryable = body is None or isinstance(body, bytes) or start is not None
            if not retryable:
                break
            _ = response.content  # read the small error body, so the connection is reused
            self._authenticate(response, scopes, what)
            if start is not None:
                body.seek(start)
        if response.status_code in ok:
            return response
        raise self._error(response, what)

    def _error(self, response: requests.Response, what: str) -> RegistryError:
        if response.status_code in (401, 403):
            return self._auth_error(response, what)
        errors = _error_codes(response)
        codes = tuple(e.get("code", "") for e in errors)
        parts = []
        for e in errors:
            text = f"{e.get('code', '')}: {e.get('message', '')}"
            detail = e.get("detail")
            if isinstance(detail, str) and detail:
                text += f" ({detail})"
            elif isinstance(detail, dict) and detail.get("Digest"):
                text += f" ({detail['Digest']})"
            parts.append(text)
        hints = [_HINTS[c] for c in dict.fromkeys(codes) if c in _HINTS]
        message = f"{what}: {self.registry} answered HTTP {response.status_code}"
        if parts:
            message += " " + "; ".join(parts)
        if hints:
            message += " - " + "; ".join(hints)
        if "MANIFEST_BLOB_UNKNOWN" in codes or "BLOB_UNKNOWN" in codes:
            return BlobUnknownError(message, response.status_code, codes)
        if response.status_code == 404 or {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"} & set(codes):
            return ImageNotFoundError(message, response.status_code, codes)
        return RegistryError(message, response.status_code, codes)

    @staticmethod
    def _pull(repository: str) -> tuple[str, ...]:
        return (f"repository:{repository}:pull",)

    @staticmethod
    def _push(repository: str) -> tuple[str, ...]:
        return (f"repository:{repository}:pull,push",)

    def _name(self, repository: str, reference: str = "") -> str:
        sep = "@" if reference.startswith("sha") and ":" in reference else ":"
        return f"{self.registry}/{repository}{sep + reference if reference else ''}"

    # --- the API --------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry answers the API (``GET /v2/``), authenticating if asked."""
        self._request("GET", self.base_url, (), f"checking {self.registry}", (200,))

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Iterable[str] = MANIFEST_TYPES + INDEX_TYPES,
    ) -> Manifest:
        """The manifest or index at a tag or digest, checked against its digest."""
        what = f"reading the manifest of {self._name(repository, reference)}"
        response = self._request(
            "GET",
            self._url(f"{repository}/manifests/{reference}"),
            self._pull(repository),
            what,
            (200,),
            headers={"Accept": ", ".join(accept)},
        )
        body = response.content
        digest = digest_of(body)
        if _DIGEST_RE.match(reference) and reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{what}: the registry returned content with digest {digest}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES + INDEX_TYPES:
            media_type = json.loads(body).get("mediaType", media_type)
        family_of(media_type)
        return Manifest(body, media_type, digest)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag points at (``HEAD``), or None when there is no such manifest."""
        what = f"checking the manifest of {self._name(repository, reference)}"
        response = self._request(
            "HEAD",
            self._url(f"{repository}/manifests/{reference}"),
            self._pull(repository),
            what,
            (200, 404),
            headers={"Accept": ", ".join(MANIFEST_TYPES + INDEX_TYPES)},
        )
        return (
            response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None
        )

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Push a manifest under a tag (or its digest); return its digest."""
        what = f"pushing the manifest {self._name(repository, reference)}"
        response = self._request(
            "PUT",
            self._url(f"{repository}/manifests/{reference}"),
            self._push(repository),
            what,
            (200, 201),
            body=body,
            headers={"Content-Type": media_type},
        )
        digest = digest_of(body)
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned != digest:
            raise RegistryError(f"{what}: the registry stored digest {returned}, not {digest}")
        return digest

    def blob_exists(self, repository: str, digest: str) -> bool:
        """Whether the repository has the blob (``HEAD``)."""
        response = self._request(
            "HEAD",
            self._url(f"{repository}/blobs/{digest}"),
            self._pull(repository),
            f"checking blob {digest} in {self._name(repository)}",
            (200, 404),
        )
        return response.status_code == 200

    def open_blob(self, repository: str, digest: str) -> requests.Response:
        """A streaming response with the blob's bytes (close it when done)."""
        return self._request(
            "GET",
            self._url(f"{repository}/blobs/{digest}"),
            self._pull(repository),
            f"downloading blob {digest} from {self._name(repository)}",
            (200,),
            stream=True,
        )

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A small blob (a config) in memory, checked against its digest."""
        with self.open_blob(repository, digest) as response:
            data = response.content
        if digest.startswith("sha256:") and digest_of(data) != digest:
            raise RegistryError(
                f"blob {digest} from {self._name(repository)} has digest {digest_of(data)}"
            )
        return data

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> str | None:
        """Mount a blob from another repository of this registry. Return None when mounted,
        else the upload location the registry opened instead (use it to copy the blob)."""
        what = f"mounting blob {digest} from {self._name(from_repository)} into {repository}"
        scopes = self._push(repository) + self._pull(from_repository)
        try:
            response = self._request(
                "POST",
                self._url(f"{repository}/blobs/uploads/"),
                scopes,
                what,
                (201, 202),
                params={"mount": digest, "from": from_repository},
            )
        except RegistryAuthError:
            # No pull access on the source repository: a plain upload may still be allowed.
            return self._start_upload(repository)
        if response.status_code == 201:
            return None
        return self._location(response)

    def _start_upload(self, repository: str) -> str:
        response = self._request(
            "POST",
            self._url(f"{repository}/blobs/uploads/"),
            self._push(repository),
            f"starting an upload to {self._name(repository)}",
            (202,),
        )
        return self._location(response)

    def check_push(self, repository: str) -> None:
        """Raise RegistryAuthError now if these credentials cannot push to ``repository``.

        Opens a blob upload and cancels it (as go-containerregistry's CheckPushPermission
        does), so a build learns about missing push access before it does any work; nothing
        is stored. A registry that cannot cancel uploads lets the session expire.
        """
        location = self._start_upload(repository)
        with suppress(RegistryError):
            self._request(
                "DELETE",
                location,
                self._push(repository),
                f"cancelling the push check's upload to {self._name(repository)}",
                (204,),
            )

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.registry} opened an upload but sent no Location")
        return urljoin(self.base_url, location)

    def upload_blob(
        self,
        repository: str,
        digest: str,
        data: bytes | BinaryIO | Iterator[bytes],
        size: int,
        location: str | None = None,
    ) -> None:
        """Upload a blob in one ``PUT`` (to ``location`` if an upload is already open). The
        registry checks the digest; a stream is sent as it is read."""
        location = location or self._start_upload(repository)
        parts = urlsplit(location)
        query = parts.query + ("&" if parts.query else "") + urlencode({"digest": digest})
        if not isinstance(data, bytes) and not hasattr(data, "read"):
            data = _SizedStream(data, size)
        self._request(
            "PUT",
            urlunsplit(parts._replace(query=query)),
            self._push(repository),
            f"uploading blob {digest} to {self._name(repository)}",
            (201, 204),
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def delete_blob(self, repository: str, digest: str) -> None:
        """Delete a blob from a repository (registries may refuse: deletion is optional)."""
        self._request(
            "DELETE",
            self._url(f"{repository}/blobs/{digest}"),
            (f"repository:{repository}:delete",) + self._push(repository),
            f"deleting blob {digest} from {self._name(repository)}",
            (202,),
        )


def client_for(
    registry: str,
    docker_config: str | Path | None = None,
    plain_http: bool | None = None,
) -> RegistryClient:
    """A client for ``registry`` with the credentials the docker config holds for it
    (see :func:`docker_config_path` for where the config is looked for)."""
    path = docker_config_path(docker_config)
    if path is not None:
        searched = str(path)
    elif os.environ.get(DOCKER_CONFIG_ENV):
        searched = f"$DOCKER_CONFIG ({os.environ[DOCKER_CONFIG_ENV]}, which has no config)"
    else:
        searched = "~/.docker/config.json (absent) and $DOCKER_CONFIG (unset)"
    credentials = load_credentials(registry, path)
    return RegistryClient(registry, credentials, plain_http, searched=searched)
