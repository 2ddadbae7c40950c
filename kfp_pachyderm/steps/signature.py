"""What a step function's signature means: which parameters are input directories, which one
is the output directory, and which are KFP parameters. Checked when the step is declared, so a
function that cannot be a step fails before any pipeline is compiled or run."""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.contract import REF_SUFFIX

PARAMETER_TYPES = (str, int, float, bool, list, dict)
# Every step's KFP parameter that asks for Pachyderm-native provenance (pfs.native).
NATIVE_PARAMETER = "native_provenance"
# What a step's component also takes or gives: where it writes, its metrics, its run identity.
RESERVED = (
    "commit",
    "metrics",
    "output_repo",
    "output_branch",
    "kfp_run_id",
    "kfp_task_id",
    NATIVE_PARAMETER,
)
DIRECTORY_ANNOTATIONS = (inspect.Parameter.empty, str, Path, "str", "Path")
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


class StepDefinitionError(UsageError, TypeError):
    """A function that cannot become a step, with what to change."""


@dataclass(frozen=True)
class Parameter:
    """A KFP parameter of the step: its name, type and default (``inspect.Parameter.empty``
    when it has none)."""

    name: str
    type: type
    default: Any


@dataclass(frozen=True)
class StepSignature:
    """The directories and parameters of a step function, in declaration order."""

    name: str
    inputs: tuple[str, ...]
    output: str
    parameters: tuple[Parameter, ...]


def _check_identifier(kind: str, value: str) -> None:
    if not _NAME_RE.match(value) or keyword.iskeyword(value):
        raise StepDefinitionError(
            f"invalid {kind} {value!r}: use lower-case letters, digits and underscores, "
            "starting with a letter"
        )


def read_signature(function: Callable, output: str = "out") -> StepSignature:
    """The step meaning of ``function``'s parameters: parameters without a default and
    without a type other than ``str``/``Path`` are directories; the one named ``output`` is
    where the function writes, the others are input commits presented as directories;
    parameters with a default and a type in :data:`PARAMETER_TYPES` are KFP parameters."""
    if not inspect.isfunction(function) or function.__name__ == "<lambda>":
        kind = "a lambda" if inspect.isfunction(function) else type(function).__name__
        raise StepDefinitionError(f"a step wraps a plain function defined with def, not {kind}")
    _check_identifier("step name", function.__name__)
    inputs: list[str] = []
    parameters: list[Parameter] = []
    found_output = False
    for param in inspect.signature(function, eval_str=True).parameters.values():
        where = f"{function.__name__}({param.name})"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise StepDefinitionError(f"{where}: *args and **kwargs cannot be step parameters")
        _check_identifier("parameter name", param.name)
        if param.name in RESERVED or param.name.endswith(REF_SUFFIX):
            raise StepDefinitionError(
                f"{where}: the names {', '.join(RESERVED)} and names ending in {REF_SUFFIX} "
                "are the step's own; rename the parameter"
            )
        if param.default is param.empty and param.annotation in DIRECTORY_ANNOTATIONS:
            if param.name == output:
                found_output = True
            else:
                inputs.append(param.name)
            continue
        kind = param.annotation
        if kind not in PARAMETER_TYPES:
            valid = ", ".join(t.__name__ for t in PARAMETER_TYPES)
            shown = getattr(kind, "__name__", kind) if kind is not param.empty else "no type"
            raise StepDefinitionError(
                f"{where}: parameter type {shown} is not supported; a step parameter has a "
                f"default and one of the types {valid} (a directory has no default)"
            )
        parameters.append(Parameter(param.name, kind, param.default))
    if not found_output:
        raise StepDefinitionError(
            f"{function.__name__} has no output directory parameter {output!r}: add a "
            f"parameter named {output!r} (without a default) for the files the step writes, "
            "or name yours with output=..."
        )
    if not inputs:
        raise StepDefinitionError(
            f"{function.__name__} has no input directory parameter: a step reads at least one "
            "commit (a parameter without a default)"
        )
    return StepSignature(function.__name__, tuple(inputs), output, tuple(parameters))
