"""A step as declared: the function's source and name, its directories, where it writes, how
its inputs split into datums and how the datums run. Built from a function by
:func:`define_step`, for ``pfs_step`` and for the built-in steps alike."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.kfp.checks import Check, check_commit_reference
from kfp_pachyderm.kfp.contract import REF_SUFFIX, OutputCommit
from kfp_pachyderm.pfs.refs import check_pfs_name
from kfp_pachyderm.steps.checks import check_body
from kfp_pachyderm.steps.datums import check_glob
from kfp_pachyderm.steps.signature import StepDefinitionError, StepSignature, read_signature

_WHERE_IT_WRITES = {
    f.name: f.declared.check
    for f in OutputCommit.declared_fields()
    if f.name in ("output_repo", "output_branch") and f.declared.check
}
_METRICS_RE = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[\w./-]+$")


@dataclass(frozen=True)
class StepDefinition:
    """A step as declared: the function's source and name, its directories, the output, how
    inputs split into datums, how datums run, its parameters' checks (as
    :meth:`Check.to_json` writes them) and the file of its output holding its metrics."""

    name: str
    source: str
    inputs: tuple[str, ...]
    output: str
    output_repo: str
    output_branch: str = DEFAULT_BRANCH
    globs: dict[str, str] = field(default_factory=dict)
    parallelism: int = 1
    incremental: bool = True
    datum_tries: int = 3
    checks: dict[str, list] = field(default_factory=dict)
    metrics: str = ""

    @classmethod
    def from_payload(cls, payload: str) -> StepDefinition:
        """The definition a component's payload (its fields as JSON) carries."""
        fields = json.loads(payload)
        return cls(**{**fields, "inputs": tuple(fields["inputs"])})

    def parameter_check(self, name: str) -> Check | None:
        """The check of the component input ``name`` of this step, or None."""
        if name in self.checks:
            return Check.from_json(self.checks[name])
        if name in _WHERE_IT_WRITES:  # as every one-commit step declares it
            return _WHERE_IT_WRITES[name]
        if name.endswith(REF_SUFFIX) and name.removesuffix(REF_SUFFIX) in self.inputs:
            return check_commit_reference.or_unset()
        return None

    def check_parameters(self, parameters: Mapping[str, Any]) -> None:
        """Run the declared checks on ``parameters`` (refusing with a usage error)."""
        for name, check in self.checks.items():
            if name in parameters:
                Check.from_json(check)(name, parameters[name])

    def glob_of(self, input_name: str) -> str:
        """The glob of one input (``/`` when none was given for it)."""
        return self.globs.get(input_name, "/")

    @property
    def code_digest(self) -> str:
        """Changes when the function or how its inputs split into datums changes."""
        text = json.dumps(
            {"source": self.source, "output": self.output, "globs": self.globs}, sort_keys=True
        )
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def source_of(function: Callable) -> tuple[str, int]:
    """The function's own text, without its decorators, as KFP ships a lightweight component;
    and the line of its ``def`` in its file, for messages about the text."""
    found, start = inspect.getsourcelines(function)
    lines = textwrap.dedent("".join(found)).split("\n")
    while lines and not lines[0].startswith(("def ", "async def ")):
        lines.pop(0)
        start += 1
    return "\n".join(lines).rstrip() + "\n", start


def define_step(
    function: Callable,
    output_repo: str,
    glob: str | dict[str, str] = "/",
    output_branch: str = DEFAULT_BRANCH,
    output: str = "out",
    parallelism: int = 1,
    incremental: bool = True,
    *,
    checks: Mapping[str, Check] | None = None,
    metrics: str = "",
    datum_tries: int = 3,
) -> tuple[StepDefinition, StepSignature]:
    """The definition of a step running ``function``, and its signature; every argument is
    checked here, and so is the function's body (:func:`check_body`) and each parameter's
    default against its check, so a bad one fails before anything runs."""
    check_pfs_name("output repo", output_repo)
    check_pfs_name("output branch", output_branch)
    for name, value in (("parallelism", parallelism), ("datum_tries", datum_tries)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise StepDefinitionError(f"invalid {name} {value!r}: a whole number >= 1")
    signature = read_signature(function, output)
    source, first_line = source_of(function)
    check_body(function.__name__, source, first_line, signature.output)
    globs = glob if isinstance(glob, dict) else dict.fromkeys(signature.inputs, glob)
    unknown = sorted(set(globs) - set(signature.inputs))
    if unknown:
        raise StepDefinitionError(
            f"glob names {', '.join(unknown)}, which {function.__name__} does not take as an "
            f"input directory (its inputs: {', '.join(signature.inputs)})"
        )
    for name, pattern in globs.items():
        check_glob(name, pattern)
    checks = dict(checks or {})
    defaults = {p.name: p.default for p in signature.parameters}
    unchecked = sorted(set(checks) - set(defaults))
    if unchecked:
        raise StepDefinitionError(
            f"checks name {', '.join(unchecked)}, which {function.__name__} does not take as a "
            f"parameter (its parameters: {', '.join(defaults) or '(none)'})"
        )
    for name, check in checks.items():
        if not isinstance(check, Check):
            raise StepDefinitionError(
                f"the check of {name} is {check!r}: use one of kfp_pachyderm.kfp.checks "
                "(at_least(1), one_of(...), check_fraction, ...), which a step can carry"
            )
        if defaults[name] is not inspect.Parameter.empty:
            check(name, defaults[name])
    if metrics and not _METRICS_RE.match(metrics):
        raise StepDefinitionError(
            f"invalid metrics file {metrics!r}: a path in the output such as metrics.json"
        )
    definition = StepDefinition(
        name=function.__name__,
        source=source,
        inputs=signature.inputs,
        output=signature.output,
        output_repo=output_repo,
        output_branch=output_branch,
        globs=globs,
        parallelism=parallelism,
        incremental=incremental,
        datum_tries=datum_tries,
        checks={name: check.to_json() for name, check in checks.items()},
        metrics=metrics,
    )
    return definition, signature
