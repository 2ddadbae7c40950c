"""The two authentication flows of the OCI Distribution API, both driven by the registry's
``WWW-Authenticate`` challenge:

* **basic**: the username and password are sent with every request;
* **bearer token**: a token for the request's scopes is fetched from the challenge's realm
  (with the username and password, an OAuth2 refresh token from ``identitytoken``, or
  anonymously) and cached per scope set.

Tokens are never logged or put into error messages.
"""

from __future__ import annotations

import base64
import re
import threading

import requests

from kfp_pachyderm.oci.credentials import Credentials
from kfp_pachyderm.oci.errors import RegistryAuthError, RegistryError, error_codes


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class RegistryAuth:
    """The authentication state of one registry client: basic auth once the registry asked for
    it, else the bearer tokens fetched so far. Safe to share between threads."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None,
        session: requests.Session,
        timeout: float,
        searched: str,
    ) -> None:
        """``searched`` says where credentials were looked for, for messages."""
        self.registry = registry
        self.credentials = credentials
        self.searched = searched
        self._session = session
        self._timeout = timeout
        self._lock = threading.Lock()
        self._basic = False
        self._tokens: dict[tuple[str, ...], str] = {}

    def header(self, scopes: tuple[str, ...]) -> dict[str, str]:
        """The Authorization header for a request needing ``scopes``, if any is known."""
        with self._lock:
            if self._basic and self.credentials:
                raw = f"{self.credentials.username}:{self.credentials.password}".encode()
                return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
            token = self._tokens.get(scopes)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def authenticate(self, response: requests.Response, scopes: tuple[str, ...], what: str) -> None:
        """Answer a 401 challenge: switch to basic auth, or fetch a token for ``scopes``."""
        scheme, params = _challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme == "basic":
            if not self.credentials or not self.credentials.username:
                raise self.error(response, what)
            with self._lock:
                self._basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise self.error(response, what)
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
            response = self._session.post(realm, data=form, timeout=self._timeout)
        else:
            params = [("service", service)] + [("scope", s) for s in scopes]
            auth = (creds.username, creds.password) if creds and creds.username else None
            response = self._session.get(realm, params=params, auth=auth, timeout=self._timeout)
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

    def error(self, response: requests.Response, what: str) -> RegistryAuthError:
        """The error for a 401 or 403 answer to ``what``: missing or wrong credentials, or
        valid ones lacking access."""
        codes = tuple(e.get("code", "") for e in error_codes(response))
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
