"""The checks a component's contract attaches to its parameters (``check(name, value)``).

The component runs them on its inputs before any side effect, and the CLI runs the same ones
on ``--param`` values that flow into those inputs, before anything starts. Each refuses with a
:class:`ParameterError` naming the parameter, its value and what is valid; an empty string is
"not set" and passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.pfs.refs import check_pfs_name
from kfp_pachyderm.validation import (
    check_endpoint,
    check_image,
    check_image_repository,
    check_kubernetes_name,
)

_URL_RE = re.compile(r"^(https?|s3)://[^\s/]+")

Check = Callable[[str, Any], None]


class ParameterError(UsageError):
    """A parameter that is unknown, of the wrong type, or a value a step refuses."""


def _checked(check: Callable[[str, Any], Any]) -> Check:
    """A :mod:`kfp_pachyderm.validation` check as a parameter check (empty means unset)."""

    def run(name: str, value: Any) -> None:
        if value == "":
            return
        try:
            check(name, value)
        except UsageError as err:
            raise ParameterError(f"parameter {name}: {err}") from None

    return run


def at_least(low: int) -> Check:
    """A whole number of at least ``low``."""

    def check(name: str, value: int) -> None:
        if value < low:
            raise ParameterError(f"parameter {name}={value!r}: must be at least {low}")

    return check


def one_of(*choices: str) -> Check:
    """One of ``choices``."""

    def check(name: str, value: str) -> None:
        if value not in choices:
            raise ParameterError(f"parameter {name}={value!r}: one of {', '.join(choices)}")

    return check


def check_fraction(name: str, value: float) -> None:
    """A number strictly between 0 and 1."""
    if not 0 < value < 1:
        raise ParameterError(f"parameter {name}={value!r}: a number between 0 and 1, e.g. 0.1")


def check_commit_reference(name: str, value: str) -> None:
    """``repo@<commit id>`` or ``repo@branch``, optionally with ``:/path``."""
    from kfp_pachyderm.pfs.refs import CommitRef

    _checked(lambda _, v: CommitRef.parse(v))(name, value)


def check_repo(name: str, value: str) -> None:
    """A Pachyderm repo name, which must be given."""
    try:
        check_pfs_name("repo", value)
    except UsageError as err:
        raise ParameterError(f"parameter {name}: {err}") from None


check_kubernetes_object_name = _checked(check_kubernetes_name)
check_optional_image = _checked(lambda name, value: check_image(value))
check_image_repository_name = _checked(lambda name, value: check_image_repository(value, name))
check_endpoint_url = _checked(check_endpoint)


def check_required_image(name: str, value: str) -> None:
    """An image reference, which must be given."""
    if not value:
        raise ParameterError(f"parameter {name}='': an image reference, e.g. registry/ml/x:1.0")
    check_optional_image(name, value)


def check_source(name: str, value: str) -> None:
    """A local path that exists, an http(s):// URL, an s3:// URL or a commit reference."""
    if not value or _URL_RE.match(value):
        return
    if "://" in value:
        raise ParameterError(
            f"parameter {name}={value!r}: a local path, an http(s):// URL or an s3:// URL"
        )
    if "@" in value and not Path(value).expanduser().exists():
        check_commit_reference(name, value)
        return
    if not Path(value).expanduser().exists():
        raise ParameterError(f"parameter {name}={value!r}: no such file or directory")
