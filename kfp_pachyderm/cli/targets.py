"""Which pipeline a command means: a built-in one by name (``mnist_tfjob``), or a user's own
as ``path/to/pipelines.py:prepare`` or ``package.module:prepare``.

A user's file is imported as a module of its own, with its folder first on ``sys.path`` (so
its neighbours import as they would for ``python pipelines.py``). Whatever goes wrong while
loading it is one line naming the file and the problem: a step function that cannot be a step
says why (``pfs_step`` checks it at decoration), a missing name lists the pipelines there.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_pachyderm.errors import KfpPachydermError, UsageError
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec

_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass(frozen=True)
class PipelineTarget:
    """A pipeline a command runs: what the user called it, the KFP pipeline, and the spec a
    built-in one declares (None for a user's own: :meth:`spec` builds one)."""

    label: str
    pipeline: Any
    declared: PipelineSpec | None = None

    @property
    def builtin(self) -> bool:
        """Whether it is one of the library's own pipelines."""
        return self.declared is not None

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The pipeline function's parameters, by name."""
        return dict(inspect.signature(self.pipeline.pipeline_func).parameters)

    @property
    def name(self) -> str:
        """The pipeline function's name (for a built-in one, its name in the catalogue)."""
        return self.pipeline.pipeline_func.__name__

    def spec(self, named: str | None = None) -> PipelineSpec:
        """The pipeline's spec, its data parameter ``named`` when given (checked): a built-in
        pipeline's own; for a user's own, one built by the generic rule: its data parameter
        is the one parameter whose default is a commit reference, and nothing else is known
        (no outputs, demo data or reporter; its result is its last step's output)."""
        parameters = self.parameters
        if named and named not in parameters:
            raise UsageError(
                f"--input {named!r} is not a parameter of {self.label}: one of "
                f"{', '.join(parameters) or '(none)'}"
            )
        if self.declared is not None:
            return self.declared.with_data(named) if named else self.declared
        return PipelineSpec(pipeline=self.pipeline, data=named or self._found_data_input())

    def _found_data_input(self) -> str:
        found = [name for name, p in self.parameters.items() if _is_commit_reference(p)]
        if len(found) == 1:
            return found[0]
        which = f"several ({', '.join(found)})" if found else "none"
        raise UsageError(
            f"{self.label} has {which} of the parameters a data input is found by (a str with a "
            "default like 'raw_data@master'): name it with --input PARAMETER"
        )

    def data_input(self, named: str | None = None) -> str:
        """The parameter holding the pipeline's data commit (the one a watcher pins to each
        new commit): its spec's (see :meth:`spec`)."""
        return self.spec(named).data

    def data_branch(self, arguments: dict[str, Any], named: str | None = None) -> Any:
        """The commit reference the run reads: the data input's argument or its default."""
        from kfp_pachyderm.pfs.refs import CommitRef

        key = self.data_input(named)
        value = arguments.get(key, self.parameters[key].default)
        if not isinstance(value, str) or not value:
            raise UsageError(f"{self.label} needs its data input: --param {key}=REPO@BRANCH")
        return CommitRef.parse(value)


def _is_commit_reference(param: inspect.Parameter) -> bool:
    from kfp_pachyderm.pfs.refs import CommitRef

    if not isinstance(param.default, str) or "@" not in param.default:
        return False
    try:
        CommitRef.parse(param.default)
    except KfpPachydermError:
        return False
    return True


def resolve_target(text: str) -> PipelineTarget:
    """The pipeline ``text`` names (see the module docstring), or a one-line error."""
    if ":" not in text:
        from kfp_pachyderm.pipelines import SPECS

        if text not in SPECS:
            raise UsageError(
                f"unknown pipeline {text!r}: one of {', '.join(SPECS)}, or your own as "
                "path/to/file.py:function or package.module:function"
            )
        return PipelineTarget(text, SPECS[text].pipeline, SPECS[text])
    where, _, attribute = text.rpartition(":")
    if not where or not attribute.isidentifier():
        raise UsageError(
            f"{text!r} is not a pipeline: path/to/file.py:function or package.module:function"
        )
    module = _load(where)
    return PipelineTarget(text, _pipeline_in(module, where, attribute))


def _load(where: str) -> Any:
    if where.endswith(".py") or "/" in where or Path(where).exists():
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise UsageError(f"no pipeline file {where!r}: no such file")
        name = f"kfp_pachyderm_user_{path.stem}_{abs(hash(str(path))) & 0xFFFF:04x}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent))
        sys.dont_write_bytecode = True  # no __pycache__ left in the user's folder
        return _run_module(where, lambda: spec.loader.exec_module(module), module)
    if not _MODULE_RE.match(where):
        raise UsageError(f"{where!r} is neither a .py file nor a module name")
    return _run_module(where, lambda: importlib.import_module(where), None)


def _run_module(where: str, load, module: Any) -> Any:
    try:
        loaded = load()
    except KfpPachydermError as err:
        raise UsageError(f"{where}: {err}") from None
    except ModuleNotFoundError as err:
        raise UsageError(f"cannot load {where}: no module named {err.name!r}") from None
    except SyntaxError as err:
        raise UsageError(f"cannot load {where}: line {err.lineno}: {err.msg}") from None
    except Exception as err:
        raise UsageError(f"cannot load {where}: {type(err).__name__}: {err}") from None
    return module if module is not None else loaded


def _pipeline_in(module: Any, where: str, attribute: str) -> Any:
    from kfp.dsl.graph_component import GraphComponent

    pipelines = sorted(n for n, v in vars(module).items() if isinstance(v, GraphComponent))
    value = getattr(module, attribute, None)
    if isinstance(value, GraphComponent):
        return value
    has = f"its pipelines: {', '.join(pipelines)}" if pipelines else "it defines no @dsl.pipeline"
    if value is None:
        raise UsageError(f"{where} has no pipeline {attribute!r}; {has}")
    raise UsageError(
        f"{where}:{attribute} is a {type(value).__name__}, not a @dsl.pipeline function; {has}"
    )
