"""The errors of the OCI registry client, and the error list a registry answers with.

Every message names the registry, repository and tag or digest, and the registry's error codes;
none names credentials.
"""

from __future__ import annotations

import requests

from kfp_pachyderm.errors import NotFoundError, OperationError


class RegistryError(OperationError):
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


def error_codes(response: requests.Response) -> list[dict]:
    """The ``errors`` (code, message, detail) of a registry's JSON answer, if it has any."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return []
    return [e for e in errors if isinstance(e, dict)]
