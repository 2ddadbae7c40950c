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

import ast
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from kfp import dsl
from kfp.dsl.pipeline_channel import PipelineArtifactChannel
from kfp.dsl.python_component import PythonComponent

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.checks import Check
from kfp_pachyderm.kfp.contract import (
    REF_SUFFIX,
    ComponentField,
    OutputCommit,
    commit_input_lines,
    commit_row,
    define_function,
    docstring_lines,
    inputs_table,
    parameter_line,
    parameter_row,
    signature_lines,
)
from kfp_pachyderm.kfp.images import runtime_image
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.steps.definition import StepDefinition, define_step
from kfp_pachyderm.steps.signature import NATIVE_PARAMETER, read_signature

BODY_MODULE = "kfp_pachyderm.bodies.pfs_step"
NATIVE_DOC = "give the output Pachyderm-native provenance (see the README)"


class PfsStep(PythonComponent):
    """The component ``pfs_step`` makes; the user's function stays available as
    ``function``, and ``definition`` says how it runs."""

    def __init__(self, component: PythonComponent, function: Callable, definition: StepDefinition):
        super().__init__(component.component_spec, component.python_func)
        self.function = function
        self.definition = definition

    def inputs_table(self) -> str:
        """The Inputs table of a README for this step: its input commits, its parameters
        (their meaning from the function's ``Args:`` docstring section), where it writes."""
        definition = self.definition
        docs = _argument_docs(inspect.getdoc(self.function) or "")
        rows = [commit_row(n, docs.get(n, "an input commit")) for n in definition.inputs]
        for p in read_signature(self.function, definition.output).parameters:
            rows.append(parameter_row(p.name, p.type, p.default, docs.get(p.name, "")))
        for f in _where_it_writes(definition):
            rows.append(parameter_row(f.name, f.kind, f.wire_default, f.declared.doc))
        rows.append(parameter_row(NATIVE_PARAMETER, bool, False, NATIVE_DOC))
        return inputs_table(rows)

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
    if definition.metrics:
        lines.append("    metrics: dsl.Output[dsl.Metrics],")
    lines += [parameter_line(p.name, p.type, p.default) for p in required]
    for name in definition.inputs:
        lines += commit_input_lines(name)
    lines += [parameter_line(p.name, p.type, p.default) for p in optional]
    lines += signature_lines(_where_it_writes(definition))
    lines.append(f"    {NATIVE_PARAMETER}: bool = False,")
    payload = json.dumps(asdict(definition), sort_keys=True)
    return (
        f"def {definition.name}(\n"
        + "\n".join(lines)
        + "\n) -> str:\n"
        + docstring_lines(doc)
        + f"    from {BODY_MODULE} import run\n\n"
        + f"    return run({payload!r}, locals())\n"
    )


_PAYLOAD_RE = re.compile(r"return run\(('(?:[^'\\]|\\.)*'), locals\(\)\)")


def definition_in(source: str) -> StepDefinition | None:
    """The step a ``pfs_step`` component's source (as a compiled YAML ships it) runs."""
    if f"from {BODY_MODULE} import run" not in source:
        return None
    found = _PAYLOAD_RE.search(source)
    return StepDefinition.from_payload(ast.literal_eval(found.group(1))) if found else None


def _where_it_writes(definition: StepDefinition) -> list[ComponentField]:
    """The component's ``output_repo`` and ``output_branch``, as every step that writes one
    commit declares them (:class:`OutputCommit`), on this step's declared defaults."""
    declared = {f.name: f for f in OutputCommit.declared_fields()}
    return [
        replace(declared["output_repo"], default=definition.output_repo),
        replace(declared["output_branch"], default=definition.output_branch),
    ]


def _argument_docs(doc: str) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring, by name."""
    found: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    if "Args:" not in lines:
        return found
    name = ""
    for line in lines[lines.index("Args:") + 1 :]:
        entry = re.match(r"^    (\w+)(?: \(.*?\))?: (.*)$", line)
        if entry:
            name = entry.group(1)
            found[name] = entry.group(2)
        elif line.startswith("        ") and name:
            found[name] += " " + line.strip()
        elif line.strip():
            break
    return found


def pfs_step(
    output_repo: str,
    glob: str | dict[str, str] = "/",
    *,
    output_branch: str = DEFAULT_BRANCH,
    output: str = "out",
    parallelism: int = 1,
    incremental: bool = True,
    image: str | None = None,
    checks: Mapping[str, Check] | None = None,
    metrics: str = "",
    datum_tries: int = 3,
) -> Callable[[Callable], PfsStep]:
    """Turn a function over directories into a Pachyderm-native KFP component.

    The function's parameters without a default are directories: the one named ``output``
    receives the files it writes, each other one is an input commit. Parameters with a default
    and a type (str, int, float, bool, list, dict) are KFP parameters. ``glob`` (one pattern
    for every input, or one per input name) splits inputs into datums as Pachyderm does; the
    function runs once per datum, in ``parallelism`` worker processes, and with
    ``incremental`` only datums whose content changed since the last output run again. A
    datum whose function raises is tried ``datum_tries`` times (as Pachyderm's), each try in
    an emptied output directory. The component runs on ``image`` (default: the runtime image
    of this library version).

    ``output_repo`` and ``output_branch`` are the component's defaults; a task may write
    elsewhere (``step(..., output_repo="other")``). ``checks`` (name to a check of
    :mod:`kfp_pachyderm.kfp.checks`, such as ``at_least(1)``) are run on the parameters before
    anything is written, and by the command line on the pipeline parameters passed to them.
    With ``metrics`` (a JSON file the function writes in its output, such as
    ``metrics.json``), its top-level numbers are logged to the component's ``metrics`` output,
    which the KFP UI shows, and to the commit artifact's metadata.
    """

    def decorate(function: Callable) -> PfsStep:
        definition, signature = define_step(
            function,
            output_repo,
            glob,
            output_branch,
            output,
            parallelism,
            incremental,
            checks=checks,
            metrics=metrics,
            datum_tries=datum_tries,
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
