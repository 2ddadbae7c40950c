"""``pfs_step``: a plain Python function over directories becomes a KFP lightweight component
whose inputs and output are Pachyderm commits.

The component is an ordinary KFP Python component: its source, shipped in the compiled YAML as
KFP ships any lightweight component, holds the user's function as text and calls the library,
which pins the inputs, splits them into datums, runs the function per datum and writes one
output commit (:mod:`kfp_pachyderm.steps.run`). Each input directory ``x`` of the function
becomes two component inputs, ``x`` (a commit artifact) and ``x_ref`` (a commit reference);
calling the step with ``x=<artifact>`` or ``x="repo@branch"`` picks the right one.

Example:
    >>> @pfs_step(output_repo="split", glob="/*")                       # doctest: +SKIP
    ... def split(raw, out, test_fraction: float = 0.2):
    ...     ...
    >>> split(raw=data.outputs["commit"], test_fraction=0.1)            # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from kfp import dsl
from kfp.dsl.pipeline_channel import PipelineArtifactChannel
from kfp.dsl.python_component import PythonComponent

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.contract import REF_SUFFIX, commit_input_lines, define_function
from kfp_pachyderm.kfp.images import runtime_image
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.steps.definition import StepDefinition, define_step
from kfp_pachyderm.steps.signature import NATIVE_PARAMETER

BODY_MODULE = "kfp_pachyderm.bodies.pfs_step"


class PfsStep(PythonComponent):
    """The component ``pfs_step`` makes; the user's function stays available as
    ``function``, and ``definition`` says how it runs."""

    def __init__(self, component: PythonComponent, function: Callable, definition: StepDefinition):
        super().__init__(component.component_spec, component.python_func)
        self.function = function
        self.definition = definition

    def __call__(self, *args: Any, **kwargs: Any) -> dsl.PipelineTask:
        """A task of this step; an input given as a commit reference (a string, a pipeline
        parameter or a :class:`CommitRef`) goes to its ``_ref`` input, an artifact to the
        input itself."""
        routed = {}
        for key, value in kwargs.items():
            if key in self.definition.inputs and not _is_artifact(value):
                routed[key + REF_SUFFIX] = str(value) if isinstance(value, CommitRef) else value
            else:
                routed[key] = value
        return super().__call__(*args, **routed)


def _is_artifact(value: Any) -> bool:
    return isinstance(value, PipelineArtifactChannel | dsl.Artifact)


def _component_source(definition: StepDefinition, parameters, doc: str) -> str:
    required = [p for p in parameters if p.default is inspect.Parameter.empty]
    optional = [p for p in parameters if p.default is not inspect.Parameter.empty]
    lines = ["    commit: dsl.Output[dsl.Artifact],"]
    lines += [f"    {p.name}: {p.type.__name__}," for p in required]
    for name in definition.inputs:
        lines += commit_input_lines(name)
    lines += [f"    {p.name}: {p.type.__name__} = {p.default!r}," for p in optional]
    lines.append(f"    {NATIVE_PARAMETER}: bool = False,")
    payload = json.dumps(asdict(definition), sort_keys=True)
    return (
        f"def {definition.name}(\n"
        + "\n".join(lines)
        + "\n) -> str:\n"
        + f"    {doc!r}\n"
        + f"    from {BODY_MODULE} import run\n\n"
        + f"    return run({payload!r}, locals())\n"
    )


def pfs_step(
    output_repo: str,
    glob: str | dict[str, str] = "/",
    *,
    output_branch: str = DEFAULT_BRANCH,
    output: str = "out",
    parallelism: int = 1,
    incremental: bool = True,
    image: str | None = None,
) -> Callable[[Callable], PfsStep]:
    """Turn a function over directories into a Pachyderm-native KFP component.

    The function's parameters without a default are directories: the one named ``output``
    receives the files it writes, each other one is an input commit. Parameters with a default
    and a type (str, int, float, bool, list, dict) are KFP parameters. ``glob`` (one pattern
    for every input, or one per input name) splits inputs into datums as Pachyderm does; the
    function runs once per datum, in ``parallelism`` worker processes, and with
    ``incremental`` only datums whose content changed since the last output run again. The
    component runs on ``image`` (default: the runtime image of this library version).
    """

    def decorate(function: Callable) -> PfsStep:
        definition, signature = define_step(
            function, output_repo, glob, output_branch, output, parallelism, incremental
        )
        doc = inspect.getdoc(function) or f"The {function.__name__} step."
        source = _component_source(definition, signature.parameters, doc)
        component = dsl.component(
            define_function(source, function.__name__),
            base_image=image or runtime_image(),
            install_kfp_package=False,
        )
        return PfsStep(component, function, definition)

    return decorate
