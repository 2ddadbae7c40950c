"""One declared contract per component: its inputs dataclass is the only place a parameter is
written, and the component's signature, its README's Inputs table and the CLI's parameter
checks are generated from it.

A component body declares a frozen, keyword-only dataclass deriving from
:class:`ComponentInputs` whose fields are made with :func:`parameter`, :func:`optional` (a
parameter that may be left unset), :func:`output`, :func:`artifact_input` and
:func:`commit_input`, and a :class:`Contract` naming it and the function that runs it. Groups
of fields several components share are declared once and inherited: :class:`RunIdentity`,
:class:`CommitOutput`, :class:`OutputCommit`.
``components/<name>/component.py`` is then one line, ``name = CONTRACT.component()``: the
generated source, shipped in the compiled YAML as KFP ships any lightweight component, calls
the body with its ``locals()``.

The rules that hold everywhere:

- A commit input ``x`` is two component inputs, the artifact ``x`` and the reference ``x_ref``
  (``repo@<commit id>`` or ``repo@branch``); exactly one is given, and the body sees one
  :class:`~kfp_pachyderm.pfs.refs.CommitRef`.
- The output commit is the artifact ``commit``.
- "Not set": KFP parameters cannot be None, so an unset string is ``""`` and an unset number
  ``-1`` on the wire; the body sees None. That translation is :meth:`ComponentInputs.of`'s.
"""

from __future__ import annotations

import dataclasses
import inspect
import linecache
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from kfp import dsl

from kfp_pachyderm.codec.names import DEFAULT_BRANCH
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.artifacts import commit_of
from kfp_pachyderm.kfp.checks import Check, check_commit_reference, check_repo
from kfp_pachyderm.kfp.images import RUNTIME_IMAGE, running_image
from kfp_pachyderm.kfp.images import image as image_named
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, kfp_ids, local_run_extra
from kfp_pachyderm.pfs.refs import CommitRef

if TYPE_CHECKING:  # the KFP compiler, which a component's runtime cannot import
    from kfp.dsl.python_component import PythonComponent

REF_SUFFIX = "_ref"
UNSET_VALUES: dict[type, Any] = {str: "", int: -1}
# How "no default" is spelled by a dataclass field and by a function's signature.
NO_DEFAULT = (dataclasses.MISSING, inspect.Parameter.empty)


@dataclass(frozen=True)
class Declared:
    """What a field of a component's inputs is: a parameter, an output artifact or a commit
    input; its meaning for the README; for a parameter, whether it may be unset and the check
    its value must pass."""

    role: str
    doc: str
    check: Check | None = None
    optional: bool = False
    artifact: str = "Artifact"
    or_image: bool = False


def parameter(doc: str, default: Any = dataclasses.MISSING, *, check: Check | None = None) -> Any:
    """A component parameter with ``default`` (none: the parameter is required)."""
    return dataclasses.field(
        default=default, metadata={"declared": Declared("parameter", doc, check)}
    )


def optional(doc: str, *, check: Check | None = None) -> Any:
    """A component parameter that is unset unless given (typed ``str | None`` or
    ``int | None``)."""
    return dataclasses.field(
        default=None, metadata={"declared": Declared("parameter", doc, check, optional=True)}
    )


def output(doc: str, artifact: type = dsl.Artifact) -> Any:
    """An output artifact of the component (``dsl.Artifact``, ``dsl.Metrics``, ...)."""
    declared = Declared("output", doc, artifact=artifact.__name__)
    return dataclasses.field(metadata={"declared": declared})


def artifact_input(doc: str) -> Any:
    """A required input artifact that is not a commit (manifests, say)."""
    return dataclasses.field(metadata={"declared": Declared("input", doc)})


def commit_input(doc: str, *, or_image: bool = False) -> Any:
    """A commit input ``x``: the component takes the artifact ``x`` or the reference
    ``x_ref``, exactly one; the body sees one :class:`CommitRef`. With ``or_image``, the
    reference may also be an image whose labels name the commit: it is passed on as text,
    for the body to tell the two apart."""
    return dataclasses.field(metadata={"declared": Declared("commit", doc, or_image=or_image)})


@dataclass(frozen=True)
class ComponentField:
    """One declared field, with its plain KFP type (``str | None`` read as ``str``)."""

    name: str
    kind: type
    default: Any
    declared: Declared

    @property
    def required(self) -> bool:
        """Whether the component signature gives it no default."""
        role = self.declared.role
        if role in ("output", "input"):
            return True
        return role == "parameter" and self.default is dataclasses.MISSING

    @property
    def wire_default(self) -> Any:
        """The default as the component's signature spells it."""
        return UNSET_VALUES[self.kind] if self.declared.optional else self.default


def _plain_type(annotation: Any) -> type:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        return kinds[0] if len(kinds) == 1 else object
    return annotation


class ComponentInputs:
    """Base of each component's inputs dataclass (frozen, keyword-only). The KFP run and
    task IDs every component records are declared once, in :class:`RunIdentity`."""

    @classmethod
    def declared_fields(cls) -> list[ComponentField]:
        """The component's fields in the order its signature lists them: outputs and
        required parameters first, then the others, then the run identity, each group in
        declaration order."""
        hints = typing.get_type_hints(cls)
        found = [
            ComponentField(f.name, _plain_type(hints[f.name]), f.default, f.metadata["declared"])
            for f in dataclasses.fields(cls)
        ]
        identity = {f.name for f in dataclasses.fields(RunIdentity)}
        optional = [f for f in found if not f.required]
        return (
            [f for f in found if f.required]
            + [f for f in optional if f.name not in identity]
            + [f for f in optional if f.name in identity]
        )

    @classmethod
    def of(cls, namespace: Mapping[str, Any], component: str) -> Self:
        """The inputs from a component function's ``locals()``: each commit input resolved
        from its artifact or reference, each unset value as None, each check passed."""
        values = {}
        for f in cls.declared_fields():
            role = f.declared.role
            if role == "commit":
                values[f.name] = commit_from(namespace, f.name, component, f.declared.or_image)
                continue
            value = namespace[f.name]
            if f.declared.optional and value == UNSET_VALUES[f.kind]:
                value = None
            if role == "parameter" and value is not None and f.declared.check:
                f.declared.check(f.name, value)
            values[f.name] = value
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class RunIdentity(ComponentInputs):
    """The KFP run and task a step records in its provenance (by default those of the pod)."""

    kfp_run_id: str | None = optional(
        "the KFP run recorded; not set: the pod's (see `use_pachyderm`)"
    )
    kfp_task_id: str | None = optional(
        "the KFP task recorded; not set: the pod's (see `use_pachyderm`)"
    )

    def record(self, **fields: Any) -> ProvenanceRecord:
        """The provenance record of this step: its KFP run and task, the image it runs in,
        and for a local run the process that runs it."""
        return step_record(self.kfp_run_id, self.kfp_task_id, **fields)


@dataclass(frozen=True, kw_only=True)
class CommitOutput(RunIdentity):
    """A component whose result is a commit: its ``commit`` output artifact."""

    commit: dsl.Artifact = output("the commit the step wrote, pinned or reused")


@dataclass(frozen=True, kw_only=True)
class OutputCommit(CommitOutput):
    """Where a step that runs in this pod writes: ``output_repo@output_branch``."""

    output_repo: str = parameter("where the output commit goes", check=check_repo)
    output_branch: str = parameter("the branch of the output commit", DEFAULT_BRANCH)

    def target(self) -> CommitRef:
        """The output branch, as a reference."""
        return CommitRef(self.output_repo, branch=self.output_branch)


def step_record(
    kfp_run_id: str | None = None, kfp_task_id: str | None = None, **fields: Any
) -> ProvenanceRecord:
    """The provenance record of a step: its KFP run and task (by default the pod's), the
    image it runs in, and for a local run the process that runs it. The one builder of it."""
    run_id, task_id = kfp_ids(kfp_run_id, kfp_task_id)
    record = ProvenanceRecord(
        kfp_run_id=run_id, kfp_task_id=task_id, image=running_image(), **fields
    )
    record.extra = {**local_run_extra(), **record.extra}
    return record


def commit_from(
    namespace: Mapping[str, Any], name: str, component: str, or_image: bool = False
) -> CommitRef | str:
    """The commit input ``name`` of a component: its artifact ``name`` or its reference
    ``name_ref``, exactly one of them (with ``or_image``, a reference that is no commit
    reference is passed on as text)."""
    artifact, ref = namespace[name], namespace[name + REF_SUFFIX]
    if (artifact is None) == (not ref):
        raise UsageError(
            f"{component} needs exactly one of {name} and {name}{REF_SUFFIX} "
            f"(got {name}{REF_SUFFIX}={ref!r})"
        )
    if artifact is not None:
        return commit_of(artifact)
    return ref if or_image else CommitRef.parse(ref)


def commit_input_lines(name: str) -> list[str]:
    """The two parameter lines of the commit input ``name``: its artifact and its reference."""
    return [f"    {name}: dsl.Input[dsl.Artifact] = None,", f"    {name}{REF_SUFFIX}: str = '',"]


def signature_lines(fields: list[ComponentField]) -> list[str]:
    """The component function's parameter lines for ``fields``."""
    lines = []
    for f in fields:
        if f.declared.role == "output":
            lines.append(f"    {f.name}: dsl.Output[dsl.{f.declared.artifact}],")
        elif f.declared.role == "input":
            lines.append(f"    {f.name}: dsl.Input[dsl.Artifact],")
        elif f.declared.role == "commit":
            lines += commit_input_lines(f.name)
        else:
            lines.append(parameter_line(f.name, f.kind, f.wire_default))
    return lines


def parameter_line(name: str, kind: type, default: Any) -> str:
    """The parameter line of a KFP parameter (``default`` one of :data:`NO_DEFAULT`:
    required)."""
    if default in NO_DEFAULT:
        return f"    {name}: {kind.__name__},"
    return f"    {name}: {kind.__name__} = {default!r},"


def define_function(source: str, name: str) -> Callable:
    """Define a generated component function so that ``inspect.getsource`` finds its text
    (KFP ships the source of the function it is given)."""
    filename = f"<kfp-pachyderm component {name} {hash(source) & 0xFFFFFFFF:08x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"dsl": dsl}
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)
    return namespace[name]


def commit_row(name: str, doc: str) -> str:
    """The Inputs-table row of the commit input ``name``."""
    return (
        f"| `{name}` / `{name}{REF_SUFFIX}` | commit artifact / reference | | "
        f"{doc}; give exactly one |"
    )


def parameter_row(name: str, kind: type, default: Any, doc: str, unset: bool = False) -> str:
    """The Inputs-table row of a parameter (``default`` one of :data:`NO_DEFAULT`: required)."""
    shown = "" if default in NO_DEFAULT else f"`{default!r}`"
    return f"| `{name}` | {kind.__name__} | {shown}{' (not set)' if unset else ''} | {doc} |"


def inputs_table(rows: list[str]) -> str:
    """A README's Inputs table of ``rows``."""
    return "\n".join(["| Name | Type | Default | Meaning |", "|---|---|---|---|", *rows]) + "\n"


def docstring_lines(doc: str) -> str:
    """``doc`` as the indented docstring of a generated function."""
    text = inspect.cleandoc(doc).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    body = "\n".join(f"    {line}" if line else "" for line in text.splitlines())
    return f'    """{body.lstrip()}\n    """\n'


@dataclass(frozen=True)
class Contract:
    """A component as declared: its name, its inputs dataclass, the body function that runs
    on them, what it does (the component's docstring), what it returns and its image."""

    REGISTRY: ClassVar[dict[str, Contract]] = {}  # by the module that declares it

    name: str
    inputs: type[ComponentInputs]
    body: Callable[[Any], Any]
    doc: str
    returns: type = str
    image: str = RUNTIME_IMAGE

    def __post_init__(self) -> None:
        Contract.REGISTRY[self.body.__module__] = self

    def __call__(self, namespace: Mapping[str, Any]) -> Any:
        """Run the body on the component function's ``locals()``."""
        return self.body(self.inputs.of(namespace, self.name))

    def source(self) -> str:
        """The component function's source, as the compiled YAML ships it."""
        lines = signature_lines(self.inputs.declared_fields())
        return (
            f"def {self.name}(\n"
            + "\n".join(lines)
            + f"\n) -> {self.returns.__name__}:\n"
            + docstring_lines(self.doc)
            + f"    from {self.body.__module__} import CONTRACT\n\n"
            + "    return CONTRACT(locals())\n"
        )

    def component(self) -> PythonComponent:
        """The KFP component, on this library version's image from the configured registry."""
        return dsl.component(
            define_function(self.source(), self.name),
            base_image=image_named(self.image),
            install_kfp_package=False,
        )

    def parameter_check(self, name: str) -> Check | None:
        """The declared check of parameter ``name`` (a commit reference ``x_ref`` is checked
        as one), or None."""
        for f in self.inputs.declared_fields():
            if f.declared.role == "commit" and name == f.name + REF_SUFFIX:
                return None if f.declared.or_image else check_commit_reference.or_unset()
            if f.name == name and f.declared.role == "parameter" and f.declared.check:
                check = f.declared.check
                return check.or_unset() if f.declared.optional else check
        return None

    def inputs_table(self) -> str:
        """The README's Inputs table."""
        rows = []
        for f in self.inputs.declared_fields():
            role, doc = f.declared.role, f.declared.doc
            if role == "commit":
                rows.append(commit_row(f.name, doc))
            elif role == "input":
                rows.append(f"| `{f.name}` | artifact | | {doc} |")
            elif role == "parameter":
                rows.append(parameter_row(f.name, f.kind, f.wire_default, doc, f.declared.optional))
        return inputs_table(rows)


_CONTRACT_IMPORT = re.compile(r"from ([\w.]+) import CONTRACT\b")


def contract_module(source: str) -> str | None:
    """The module whose contract a generated component's source (as a compiled YAML ships
    it) runs."""
    found = _CONTRACT_IMPORT.search(source)
    return found.group(1) if found else None


def contract_in(source: str) -> Contract | None:
    """The contract a generated component's source runs, once its module is imported."""
    return Contract.REGISTRY.get(contract_module(source) or "")
