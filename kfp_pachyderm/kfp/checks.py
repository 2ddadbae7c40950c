"""The checks a component's contract, or a ``pfs_step``, attaches to its parameters.

A check is data (:class:`Check`: a kind and its arguments), so a step's payload can carry it
into the container and the command line can read it back from a compiled pipeline. The step
runs its checks on its inputs before any side effect, and the CLI runs the same ones on
``--param`` values that flow into those inputs, before anything starts. Each refuses with a
:class:`ParameterError` naming the parameter, its value and what is valid. Where a value may be
unset (:meth:`Check.or_unset`), an empty string passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.pfs.refs import CommitRef, check_pfs_name
from kfp_pachyderm.validation import (
    check_endpoint,
    check_image,
    check_image_repository,
    check_kubernetes_name,
)

_URL_RE = re.compile(r"^(https?|s3)://[^\s/]+")


class ParameterError(UsageError):
    """A parameter that is unknown, of the wrong type, or a value a step refuses."""


def _refusing(name: str, check: Callable[[], Any]) -> None:
    try:
        check()
    except UsageError as err:
        raise ParameterError(f"parameter {name}: {err}") from None


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ParameterError(f"parameter {name}={value!r}: must be at least {low}")


def _one_of(name: str, value: str, *choices: str) -> None:
    if value not in choices:
        raise ParameterError(f"parameter {name}={value!r}: one of {', '.join(choices)}")


def _fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ParameterError(f"parameter {name}={value!r}: a number between 0 and 1, e.g. 0.1")


def _commit_reference(name: str, value: str) -> None:
    _refusing(name, lambda: CommitRef.parse(value))


def _repo(name: str, value: str) -> None:
    _refusing(name, lambda: check_pfs_name("repo", value))


def _kubernetes_name(name: str, value: str) -> None:
    _refusing(name, lambda: check_kubernetes_name(name, value))


def _image(name: str, value: str) -> None:
    _refusing(name, lambda: check_image(value))


def _image_repository(name: str, value: str) -> None:
    _refusing(name, lambda: check_image_repository(value, name))


def _endpoint(name: str, value: str) -> None:
    _refusing(name, lambda: check_endpoint(name, value))


def _source(name: str, value: str) -> None:
    if not value:
        raise ParameterError(
            f"parameter {name}='': a local path, an http(s):// or s3:// URL, or a commit reference"
        )
    if _URL_RE.match(value):
        return
    if "://" in value:
        raise ParameterError(
            f"parameter {name}={value!r}: a local path, an http(s):// URL or an s3:// URL"
        )
    if "@" in value and not Path(value).expanduser().exists():
        _commit_reference(name, value)
        return
    if not Path(value).expanduser().exists():
        raise ParameterError(f"parameter {name}={value!r}: no such file or directory")


_KINDS: dict[str, Callable[..., None]] = {
    "at_least": _at_least,
    "one_of": _one_of,
    "fraction": _fraction,
    "commit_reference": _commit_reference,
    "repo": _repo,
    "kubernetes_name": _kubernetes_name,
    "image": _image,
    "image_repository": _image_repository,
    "endpoint": _endpoint,
    "source": _source,
}


@dataclass(frozen=True)
class Check:
    """A parameter check as data: its kind and arguments; ``check(name, value)`` runs it.
    With ``unset_ok`` (the check of a parameter that may be left unset) ``""`` passes."""

    kind: str
    args: tuple = ()
    unset_ok: bool = False

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise UsageError(f"unknown check {self.kind!r}: one of {', '.join(_KINDS)}")

    def __call__(self, name: str, value: Any) -> None:
        if not (self.unset_ok and value == ""):
            _KINDS[self.kind](name, value, *self.args)

    def or_unset(self) -> Check:
        """This check for a parameter that may be left unset."""
        return replace(self, unset_ok=True)

    def to_json(self) -> list:
        """The check as JSON (``[kind, [args...], unset_ok]``), for a step's payload."""
        return [self.kind, list(self.args), self.unset_ok]

    @classmethod
    def from_json(cls, data: list) -> Check:
        """The check :meth:`to_json` wrote."""
        kind, args, unset_ok = data
        return cls(kind, tuple(args), unset_ok)


def at_least(low: int) -> Check:
    """A whole number of at least ``low``."""
    return Check("at_least", (low,))


def one_of(*choices: str) -> Check:
    """One of ``choices``."""
    return Check("one_of", choices)


check_fraction = Check("fraction")  # a number strictly between 0 and 1
check_commit_reference = Check("commit_reference")  # repo@<commit id> or repo@branch[:/path]
check_repo = Check("repo")  # a Pachyderm repo name, which must be given
check_kubernetes_object_name = Check("kubernetes_name")  # an RFC 1123 label
check_image_reference = Check("image")  # an image reference
check_image_repository_name = Check("image_repository")  # a repository without a tag
check_endpoint_url = Check("endpoint")  # an http(s) endpoint
check_source = Check("source")  # an existing local path, an http(s) or s3 URL, a commit ref
