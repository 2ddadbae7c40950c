"""Where a pipeline's parameters go: the component inputs each one is passed to, and the
Kubernetes objects it names, read from the compiled pipeline (its IR and platform spec).

This is how a pipeline parameter gets the checks of the steps it feeds: ``data`` passed to
``resolve_commit``'s ``ref`` is checked as a commit reference, ``workers`` passed to
``start_tfjob`` as a replica count, ``token_secret`` mounted as a Secret as a Kubernetes
name, each by the contract (:mod:`kfp_pachyderm.kfp.contract`) or the ``pfs_step`` that
declares it, never by the parameter's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from kfp_pachyderm.kfp.checks import Check, check_kubernetes_object_name
from kfp_pachyderm.kfp.contract import Contract, contract_in, contract_module
from kfp_pachyderm.steps.component import definition_in
from kfp_pachyderm.steps.definition import StepDefinition

BODIES_PACKAGE = "kfp_pachyderm.bodies."
# The platform-spec fields whose value is the name of a Kubernetes object.
_OBJECT_NAME_FIELDS = ("secretNameParameter", "configMapNameParameter", "pvcNameParameter")


@dataclass(frozen=True)
class Destination:
    """One place a pipeline parameter is passed: a component's input, or a Kubernetes object
    name; with the check that place declares."""

    where: str
    check: Check


def _as_dict(message: Any) -> dict:
    return json_format.MessageToDict(message) if message is not None else {}


def _declared_by(spec: dict, component: dict) -> Contract | StepDefinition | None:
    """The contract, or the ``pfs_step`` definition, a task's component was generated from
    (its shipped source names it)."""
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    source = "\n".join(executor.get("container", {}).get("command", []))
    module = contract_module(source)
    if module and module.startswith(BODIES_PACKAGE) and module not in Contract.REGISTRY:
        importlib.import_module(module)  # a component loaded from its YAML: read its contract
    return contract_in(source) or definition_in(source)


def _task_inputs(
    spec: dict, dag: dict, bindings: dict[str, str]
) -> Iterator[tuple[str, Contract | StepDefinition | None, str]]:
    """(pipeline parameter, declaration, input) for every leaf task input fed by a
    parameter."""
    for task in dag.get("tasks", {}).values():
        component = spec["components"][task["componentRef"]["name"]]
        inner: dict[str, str] = {}
        for name, value in task.get("inputs", {}).get("parameters", {}).items():
            source = bindings.get(value.get("componentInputParameter", ""))
            if source is None:
                continue
            if "dag" in component:
                inner[name] = source
            else:
                yield source, _declared_by(spec, component), name
        if "dag" in component:
            yield from _task_inputs(spec, component["dag"], inner)


def _object_names(platform: Any, bindings: dict[str, str]) -> Iterator[str]:
    """Every pipeline parameter a platform spec uses as a Kubernetes object name."""
    if isinstance(platform, dict):
        for key, value in platform.items():
            if key in _OBJECT_NAME_FIELDS and isinstance(value, dict):
                source = bindings.get(value.get("componentInputParameter", ""))
                if source is not None:
                    yield source
            else:
                yield from _object_names(value, bindings)
    elif isinstance(platform, list):
        for item in platform:
            yield from _object_names(item, bindings)


def parameter_destinations(pipeline: Any) -> dict[str, list[Destination]]:
    """For each parameter of the compiled ``pipeline`` (a ``@dsl.pipeline``), the declared
    checks of the places it is passed to."""
    spec = _as_dict(pipeline.pipeline_spec)
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    found: dict[str, list[Destination]] = {name: [] for name in parameters}
    root = {name: name for name in parameters}
    channels = root | {f"pipelinechannel--{name}": name for name in parameters}
    for source, declared, name in _task_inputs(spec, spec["root"]["dag"], root):
        check = declared.parameter_check(name) if declared else None
        if check is not None:
            found[source].append(Destination(f"{declared.name}.{name}", check))
    for source in _object_names(_as_dict(getattr(pipeline, "platform_spec", None)), channels):
        found[source].append(Destination("a Kubernetes object name", check_kubernetes_object_name))
    return found
