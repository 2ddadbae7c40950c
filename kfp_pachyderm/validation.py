"""The one definition of each value the library checks before any side effect: image
references, Kubernetes names and quantities, URLs, and the enumerations a step offers.

Every check raises :class:`~kfp_pachyderm.errors.UsageError` (or a subclass) naming the value
and what would be valid, and returns the value, so calls read ``image = check_image(image)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from kfp_pachyderm.errors import UsageError

DATA_MODES = ("pfs", "s3")
"""How TFJob replicas reach the data: pachd's file API, or its S3 gateway."""
RUNNERS = ("auto", "kubernetes", "local")
"""Where a TFJob runs: on the cluster when there is one (``auto``), or as local processes."""


class InvalidImageReference(UsageError):
    """A container image reference that does not follow the distribution grammar."""


# The distribution reference grammar (github.com/distribution/reference): path components of
# lowercase letters and digits joined by '.', '_', '__' or dashes; tags of up to 128 word
# characters, '.' and '-'; digests sha256 or sha512, as the OCI image spec registers them.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
HOST_RE = re.compile(r"^(?:[\w-]+(?:\.[\w-]+)*|\[[0-9a-fA-F:]+\])(?::\d+)?$")
_PORT_HOST_RE = re.compile(r"^[\w.-]+:\d+$")


@dataclass(frozen=True)
class ImageParts:
    """An image reference split as written: ``registry`` is None when the text names none."""

    registry: str | None
    repository: str
    tag: str | None
    digest: str | None


def looks_like_registry_host(component: str) -> bool:
    """Whether the first path part of an image reference names a registry (it has a dot or a
    port, or is ``localhost``), as Docker decides; Pachyderm project names cannot."""
    return component == "localhost" or "." in component or bool(_PORT_HOST_RE.match(component))


def split_image_reference(text: str) -> ImageParts:
    """``[registry/]repository[:tag][@digest]`` (a ``docker://`` prefix allowed) split into
    its parts, each checked; :class:`InvalidImageReference` names the bad part."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidImageReference(f"empty image reference {text!r}: expected registry/repo[:tag]")
    body = text.strip().removeprefix("docker://")
    body, _, digest = body.partition("@")
    tag = None
    if ":" in body.rsplit("/", 1)[-1]:
        body, tag = body.rsplit(":", 1)
    first, _, rest = body.partition("/")
    registry, repository = (
        (first, rest) if rest and looks_like_registry_host(first) else (None, body)
    )
    # an empty tag ("name:") is refused, as Kubernetes refuses it; an empty digest is ignored
    check_image_parts(registry, repository, tag, digest or None, f" (in image reference {text!r})")
    return ImageParts(registry, repository, tag or None, digest or None)


def check_image_parts(
    registry: str | None, repository: str, tag: str | None, digest: str | None, where: str = ""
) -> None:
    """Check each part of an image reference; :class:`InvalidImageReference` names the bad
    one (``where`` says in which reference)."""
    if registry is not None and not HOST_RE.match(registry):
        raise InvalidImageReference(f"invalid registry host {registry!r}{where}")
    if not REPOSITORY_RE.match(repository) or len(repository) > 255:
        raise InvalidImageReference(
            f"invalid repository name {repository!r}: lowercase letters, digits and "
            f"separators ('.', '_', '__', '-', '/') only{where}"
        )
    if tag is not None and not TAG_RE.match(tag):
        raise InvalidImageReference(
            f"invalid tag {tag!r}: up to 128 letters, digits, '_', '.' and '-', "
            f"not starting with '.' or '-'{where}"
        )
    if digest is not None and not DIGEST_RE.match(digest):
        raise InvalidImageReference(
            f"invalid digest {digest!r}: expected sha256:<64 hex> or sha512:<128 hex>{where}"
        )


def check_image(value: str, what: str = "image reference") -> str:
    """``value`` if it is a container image reference, e.g. registry.example.com/ml/x:1.0."""
    try:
        split_image_reference(value)
    except InvalidImageReference as err:
        raise InvalidImageReference(
            f"invalid {what} {value!r}: expected [registry/]name[:tag][@digest], for example "
            f"registry.example.com/ml/trainer:1.0 ({err})"
        ) from None
    return value


def check_image_repository(value: str, what: str = "image") -> str:
    """``value`` if it is an image repository without tag or digest (the library tags it)."""
    parts = split_image_reference(value)
    if parts.tag or parts.digest:
        raise InvalidImageReference(
            f"{what} {value!r} must name a repository only (no tag), e.g. "
            "registry.example.com/ml/mnist: the tag is always the model commit ID"
        )
    return value


# RFC 1123 labels: what Kubernetes accepts for namespaces, Secrets' names and the names of the
# objects the library creates (kept to 63 characters, for the pod names derived from them).
KUBERNETES_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def check_kubernetes_name(what: str, value: str) -> str:
    """``value`` if it is a valid Kubernetes object name (an RFC 1123 label)."""
    if not value or not KUBERNETES_NAME_RE.match(value):
        raise UsageError(
            f"invalid {what} {value!r}: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_quantity(what: str, value: str) -> str:
    """``value`` if it is a Kubernetes resource quantity such as ``500m`` or ``2Gi``."""
    if not QUANTITY_RE.match(str(value)):
        raise UsageError(f"invalid {what} quantity {value!r}: for example 500m, 2, 4Gi")
    return value


_URL_RE = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>[^\s/?#]+)(?P<rest>[^\s]*)$")
_ENDPOINT_HOST_RE = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$")


def check_url(what: str, value: str, schemes: Iterable[str] = ("http", "https")) -> str:
    """``value`` if it is a URL with one of ``schemes`` and a host."""
    allowed = tuple(schemes)
    match = _URL_RE.match(value or "")
    if not match or match.group("scheme") not in allowed:
        listed = " or ".join(f"{scheme}://" for scheme in allowed)
        raise UsageError(f"invalid {what} {value!r}: a {listed} URL with a host")
    return value


def check_endpoint(what: str, value: str) -> str:
    """``value`` if it is an ``http(s)://host[:port]`` endpoint with no path (what S3 clients
    are given)."""
    match = _URL_RE.match(value or "")
    if (
        not match
        or match.group("scheme") not in ("http", "https")
        or not _ENDPOINT_HOST_RE.match(match.group("host"))
        or match.group("rest") not in ("", "/")
    ):
        raise UsageError(f"invalid {what} {value!r}: an http(s)://host[:port] URL")
    return value


def check_one_of(what: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    allowed = tuple(choices)
    if value not in allowed:
        raise UsageError(f"invalid {what} {value!r}: one of {', '.join(allowed)}")
    return value
