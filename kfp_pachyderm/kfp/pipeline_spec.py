"""One spec per pipeline, declared next to its pipeline function: what the rest of the library
knows about a pipeline without running it.

- ``data``: the pipeline parameter that names the data commit it reads (what ``watch`` pins to
  each new commit, what ``run --local --put`` commits to);
- ``outputs``: every branch its steps write, each as its step writes it (a fixed repo or the
  pipeline parameter naming the repo, on the step's own output branch; see
  :func:`written_by`): the branches the exit handler finishes when a run ends with a commit
  still open; ``result``, the one of them whose head is the pipeline's result;
- ``demo_data``: the kind of demo data a local run seeds an empty input with;
- ``report``: what prints the result of a local run (predictions, titles written, the serving
  image), each called with the run's :class:`LocalResult`;
- ``checks`` and ``rules``: what the command line checks of a parameter no step sees whole
  (one formatted into a command line) and of several parameters together; a parameter passed
  to a component input is checked by that input's declaration.

A user's own pipeline declares none: the command line builds one for it (its data parameter
found by the generic rule, no outputs known, no demo data, no reporter).

Example:
    >>> MODEL = written_by(train, parameter="model_repo")               # doctest: +SKIP
    >>> SPEC = PipelineSpec(pipeline=mnist_gpu, data="data", outputs=(MODEL,), result=MODEL,
    ...                     demo_data="mnist", report=(report_predictions,))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.checks import Check
from kfp_pachyderm.pfs.refs import CommitRef

# The demo data a local run can seed: the digits in the mnist.npz layout, CSVs of issues in
# the seed's layout, or one text file (any commit triggers the job).
DEMO_KINDS = ("mnist", "issues", "text")


@dataclass(frozen=True, kw_only=True)
class OutputBranch:
    """A branch a pipeline's step writes: the fixed ``repo``, or the repo that the pipeline
    parameter ``parameter`` names; on ``branch``."""

    branch: str
    repo: str = ""
    parameter: str = ""

    def __post_init__(self) -> None:
        if bool(self.repo) == bool(self.parameter):
            raise UsageError(
                f"an output branch names a repo or the parameter holding it, not both or "
                f"neither (repo={self.repo!r}, parameter={self.parameter!r})"
            )

    def ref(self, values: Mapping[str, Any]) -> str:
        """``repo@branch``, a parameter's repo taken from ``values``: the pipeline's parameters
        (its channels while the pipeline compiles, their values in a local run)."""
        if not self.parameter:
            return f"{self.repo}@{self.branch}"
        if self.parameter not in values:
            raise UsageError(
                f"the output repo is the pipeline parameter {self.parameter!r}: pass it "
                f"({self.parameter}={self.parameter})"
            )
        return f"{values[self.parameter]}@{self.branch}"


def written_by(
    step: Any,
    *,
    repo: str = "",
    parameter: str = "",
    repo_input: str = "output_repo",
    branch_input: str = "output_branch",
) -> OutputBranch:
    """The branch ``step`` writes, on the step's own output branch (so a branch is never typed
    twice): a ``pfs_step``'s declared output, or a component's ``repo_input`` on the default
    of its ``branch_input``; the repo is ``repo``, the pipeline parameter ``parameter``, or
    the default of ``repo_input``."""
    definition = getattr(step, "definition", None)
    if definition is not None:  # a pfs_step: its declared output, unless a task passes a repo
        if parameter:
            return OutputBranch(parameter=parameter, branch=definition.output_branch)
        return OutputBranch(repo=repo or definition.output_repo, branch=definition.output_branch)
    inputs = step.component_spec.inputs
    branch = inputs[branch_input].default
    if parameter:
        return OutputBranch(parameter=parameter, branch=branch)
    return OutputBranch(repo=repo or inputs[repo_input].default, branch=branch)


def output_refs(outputs: Sequence[OutputBranch], values: Mapping[str, Any]) -> list[str]:
    """Each of ``outputs`` as ``repo@branch`` (see :meth:`OutputBranch.ref`)."""
    return [output.ref(values) for output in outputs]


@dataclass(frozen=True)
class LocalResult:
    """A local run's result, as a spec's reporters read it: the local server's ``client``,
    the ``commit`` the run produced, the ``data`` commit it read, the run's parameter
    ``values`` (its arguments over the pipeline's defaults) and a ``scratch`` folder, removed
    once the report is done."""

    client: Any
    commit: CommitRef
    data: CommitRef
    values: Mapping[str, Any]
    scratch: Path

    def branch(self, output: OutputBranch) -> CommitRef:
        """The branch ``output`` of this run."""
        return CommitRef.parse(output.ref(self.values))


Reporter = Callable[[LocalResult], None]


@dataclass(frozen=True, kw_only=True)
class PipelineSpec:
    """What the library knows of a pipeline (see the module docstring); checked when made."""

    pipeline: Any
    data: str
    outputs: tuple[OutputBranch, ...] = ()
    result: OutputBranch | None = None
    demo_data: str = ""
    report: tuple[Reporter, ...] = ()
    checks: Mapping[str, Check] = field(default_factory=dict)
    rules: tuple[Callable[[Mapping[str, Any]], None], ...] = ()

    def __post_init__(self) -> None:
        parameters = self.parameters
        named = [self.data, *(o.parameter for o in self.outputs if o.parameter), *self.checks]
        unknown = [name for name in named if name not in parameters]
        if unknown:
            raise UsageError(
                f"the spec of {self.name} names {', '.join(unknown)}, not a parameter of it "
                f"(its parameters: {', '.join(parameters) or '(none)'})"
            )
        if self.result is not None and self.result not in self.outputs:
            raise UsageError(f"the result of {self.name} is not one of its outputs")
        if self.demo_data and self.demo_data not in DEMO_KINDS:
            raise UsageError(
                f"unknown demo data {self.demo_data!r} for {self.name}: one of "
                f"{', '.join(DEMO_KINDS)}"
            )

    @property
    def function(self) -> Callable:
        """The Python function of the pipeline."""
        return getattr(self.pipeline, "pipeline_func", self.pipeline)

    @property
    def name(self) -> str:
        """The pipeline function's name (a built-in pipeline's name in the catalogue)."""
        return self.function.__name__

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The pipeline function's parameters, by name."""
        return dict(inspect.signature(self.function).parameters)

    def values(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``arguments`` over the defaults of the pipeline's parameters."""
        defaults = {
            name: p.default
            for name, p in self.parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        return {**defaults, **arguments}

    def output_refs(self, arguments: Mapping[str, Any]) -> list[str]:
        """Every output branch as ``repo@branch``, for a run with ``arguments``."""
        return output_refs(self.outputs, self.values(arguments))

    def with_data(self, parameter: str) -> PipelineSpec:
        """The same spec reading its data from ``parameter`` (checked)."""
        return self if parameter == self.data else replace(self, data=parameter)
