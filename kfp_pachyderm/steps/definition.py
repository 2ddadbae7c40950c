"""A step as declared: the function's source and name, its directories, where it writes, how
its inputs split into datums and how the datums run. Built from a function by
:func:`define_step`, for ``pfs_step`` and for the built-in steps alike."""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.pfs.refs import check_pfs_name
from kfp_pachyderm.steps.checks import check_body
from kfp_pachyderm.steps.datums import check_glob
from kfp_pachyderm.steps.signature import StepDefinitionError, StepSignature, read_signature


@dataclass(frozen=True)
class StepDefinition:
    """A step as declared: the function's source and name, its directories, the output, how
    inputs split into datums, and how datums run."""

    name: str
    source: str
    inputs: tuple[str, ...]
    output: str
    output_repo: str
    output_branch: str = DEFAULT_BRANCH
    globs: dict[str, str] = field(default_factory=dict)
    parallelism: int = 1
    incremental: bool = True

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
) -> tuple[StepDefinition, StepSignature]:
    """The definition of a step running ``function``, and its signature; every argument is
    checked here, and so is the function's body (:func:`check_body`), so a bad one fails
    before anything runs."""
    check_pfs_name("output repo", output_repo)
    check_pfs_name("output branch", output_branch)
    if not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 1:
        raise StepDefinitionError(f"invalid parallelism {parallelism!r}: a whole number >= 1")
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
    )
    return definition, signature
