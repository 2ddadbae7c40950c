"""A client for the OCI Distribution API: read and push images with no Docker daemon.

What a step needs to append a layer to an image in a registry and push the result:
manifests and indexes (:mod:`kfp_pachyderm.oci.media`), blobs (existence checks, downloads,
monolithic uploads, cross-repository mounts), and the registry's basic and bearer token
authentication (:mod:`kfp_pachyderm.oci.auth`) with the credentials of a docker config
(:mod:`kfp_pachyderm.oci.credentials`).

Registries on plain HTTP (a local ``docker-registry``) are reached with ``plain_http=True`` or by
listing them in ``KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES`` (comma-separated ``host:port``).

Example:
    >>> client = client_for("localhost:5000")                 # doctest: +SKIP
    >>> manifest = client.get_manifest("ml/mnist", "latest")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kfp_pachyderm.oci.auth import RegistryAuth
from kfp_pachyderm.oci.credentials import (
    DOCKER_CONFIG_ENV,
    Credentials,
    docker_config_path,
    load_credentials,
)
from kfp_pachyderm.oci.errors import (
    BlobUnknownError,
    ImageNotFoundError,
    RegistryAuthError,
    RegistryError,
    error_codes,
)
from kfp_pachyderm.oci.media import INDEX_TYPES, MANIFEST_TYPES, Manifest, family_of
from kfp_pachyderm.oci.reference import DOCKER_HUB, digest_of
from kfp_pachyderm.validation import DIGEST_RE

log = logging.getLogger(__name__)

PLAIN_HTTP_ENV = "KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES"
DOCKER_HUB_API = "registry-1.docker.io"


def plain_http_registries() -> set[str]:
    """The registries listed in ``KFP_PACHYDERM_PLAIN_HTTP_REGISTRIES``."""
    return {h.strip() for h in os.environ.get(PLAIN_HTTP_ENV, "").split(",") if h.strip()}


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
        self._auth = RegistryAuth(registry, credentials, self._session, timeout, searched)

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r}, {self.credentials!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
            all_headers = {**(headers or {}), **self._auth.header(scopes)}
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
            self._auth.authenticate(response, scopes, what)
            if start is not None:
                body.seek(start)
        if response.status_code in ok:
            return response
        raise self._error(response, what)

    def _error(self, response: requests.Response, what: str) -> RegistryError:
        if response.status_code in (401, 403):
            return self._auth.error(response, what)
        errors = error_codes(response)
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
        if DIGEST_RE.match(reference) and reference.startswith("sha256:") and digest != reference:
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
