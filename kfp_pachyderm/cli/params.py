"""Pipeline parameters from the command line: ``--param key=value`` converted by the pipeline's
declared types and checked the way its steps would check them, before anything starts. One
validation, shared by ``run --local``, ``run --host`` and ``watch``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp_pachyderm.errors import KfpPachydermError, UsageError
from kfp_pachyderm.validation import (
    DATA_MODES,
    RUNNERS,
    check_endpoint,
    check_image,
    check_image_repository,
    check_kubernetes_name,
)

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_URL_RE = re.compile(r"^(https?|s3)://[^\s/]+")


class ParameterError(UsageError):
    """A pipeline parameter that is unknown, of the wrong type, or a value a step refuses."""


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """``key=value`` strings as a dict; a pair without ``=`` or a key is refused."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ParameterError(f"invalid --param {pair!r}: expected key=value")
        params[key] = value
    return params


def _convert(name: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise ParameterError(f"parameter {name}={text!r}: expected true or false")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ParameterError(f"parameter {name}={text!r}: expected a whole number") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ParameterError(f"parameter {name}={text!r}: expected a number") from None
    return text


def _at_least(low: int) -> Callable[[str, Any], None]:
    def check(name: str, value: int) -> None:
        if value < low:
            raise ParameterError(f"parameter {name}={value!r}: must be at least {low}")

    return check


def _one_of(*choices: str) -> Callable[[str, Any], None]:
    def check(name: str, value: str) -> None:
        if value not in choices:
            raise ParameterError(f"parameter {name}={value!r}: one of {', '.join(choices)}")

    return check


def _fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ParameterError(f"parameter {name}={value!r}: a number between 0 and 1, e.g. 0.1")


def _commit_reference(name: str, value: str) -> None:
    from kfp_pachyderm.pfs.refs import CommitRef

    try:
        CommitRef.parse(value)
    except KfpPachydermError as err:
        raise ParameterError(f"parameter {name}: {err}") from None


def _repo(name: str, value: str) -> None:
    from kfp_pachyderm.pfs.refs import check_pfs_name

    try:
        check_pfs_name("repo", value)
    except KfpPachydermError as err:
        raise ParameterError(f"parameter {name}: {err}") from None


def _checked(check: Callable[[str, Any], Any]) -> Callable[[str, Any], None]:
    """A :mod:`kfp_pachyderm.validation` check as a parameter check (empty means unset)."""

    def run(name: str, value: Any) -> None:
        if value == "":
            return
        try:
            check(name, value)
        except UsageError as err:
            raise ParameterError(f"parameter {name}: {err}") from None

    return run


_kubernetes_name = _checked(check_kubernetes_name)
_optional_image = _checked(lambda name, value: check_image(value))
_repository = _checked(lambda name, value: check_image_repository(value, name))
_endpoint = _checked(check_endpoint)


def _image(name: str, value: str) -> None:
    if not value:
        raise ParameterError(f"parameter {name}='': an image reference, e.g. registry/ml/x:1.0")
    _optional_image(name, value)


def _source(name: str, value: str) -> None:
    if not value or _URL_RE.match(value):
        return
    if "://" in value:
        raise ParameterError(
            f"parameter {name}={value!r}: a local path, an http(s):// URL or an s3:// URL"
        )
    if not Path(value).expanduser().exists():
        raise ParameterError(f"parameter {name}={value!r}: no such file or directory")


CHECKS: dict[str, Callable[[str, Any], None]] = {
    "data": _commit_reference,
    "input_data": _commit_reference,
    "model_repo": _repo,
    "output_repo": _repo,
    "source": _source,
    "commit_source": _source,
    "workers": _at_least(0),
    "epochs": _at_least(1),
    "batch_size": _at_least(1),
    "test_fraction": _fraction,
    "data_mode": _one_of(*DATA_MODES),
    "runner": _one_of(*RUNNERS),
    "trainer_image": _image,
    "image": _optional_image,
    "base_image": _optional_image,
    "serving_image": _repository,
    "s3_endpoint": _endpoint,
    "namespace": _kubernetes_name,
    "kserve_namespace": _kubernetes_name,
    "token_secret": _kubernetes_name,
    "registry_secret": _kubernetes_name,
}


def pipeline_arguments(name: str, pipeline: Any, raw: dict[str, str]) -> dict[str, Any]:
    """``raw`` (name -> text) as typed arguments of ``pipeline``; an unknown name, a value of
    the wrong type or one a step would refuse raises :class:`ParameterError` naming it."""
    parameters = inspect.signature(pipeline.pipeline_func).parameters
    arguments = {}
    for key, text in raw.items():
        if key not in parameters:
            raise ParameterError(
                f"unknown parameter {key!r} for {name}: one of {', '.join(parameters)}"
            )
        annotation = parameters[key].annotation
        kind = annotation if annotation in (bool, int, float, str) else str
        value = _convert(key, text, kind)
        if key in CHECKS:
            CHECKS[key](key, value)
        arguments[key] = value
    if arguments.get("push_image") and not arguments.get("serving_image"):
        raise ParameterError(
            "parameter push_image=true needs serving_image (a repository such as "
            "registry.example.com/ml/model) to push to"
        )
    return arguments
