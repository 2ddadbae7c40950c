"""Pipeline parameters from the command line: ``--param key=value`` converted by the pipeline's
declared types and checked the way its steps would check them, before anything starts. One
validation, shared by ``run --local``, ``run --host`` and ``watch``.

A value is checked by every place it flows to (:mod:`kfp_pachyderm.cli.parameter_flow`): the
contract of each component input it is passed to, a Kubernetes name where it names a Secret,
and the checks the pipeline's own spec declares for parameters no step sees whole (one that
goes into a command line, say).
"""

from __future__ import annotations

import inspect
from typing import Any

from kfp_pachyderm.cli.parameter_flow import parameter_destinations
from kfp_pachyderm.kfp.checks import ParameterError
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


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


def pipeline_arguments(
    name: str, pipeline: Any, raw: dict[str, str], spec: PipelineSpec | None = None
) -> dict[str, Any]:
    """``raw`` (name -> text) as typed arguments of ``pipeline``; an unknown name, a value of
    the wrong type or one a step would refuse raises :class:`ParameterError` naming it.
    ``spec``, the pipeline's own, adds its declared checks and rules."""
    parameters = inspect.signature(pipeline.pipeline_func).parameters
    destinations = parameter_destinations(pipeline)
    arguments = {}
    for key, text in raw.items():
        if key not in parameters:
            raise ParameterError(
                f"unknown parameter {key!r} for {name}: one of {', '.join(parameters)}"
            )
        annotation = parameters[key].annotation
        value = _convert(key, text, annotation if annotation in (bool, int, float, str) else str)
        checks = [d.check for d in destinations.get(key, [])]
        if spec is not None and key in spec.checks:
            checks.append(spec.checks[key])
        for check in dict.fromkeys(checks):
            check(key, value)
        arguments[key] = value
    for rule in spec.rules if spec is not None else ():
        rule(arguments)
    return arguments
