"""The package's structure holds: imports go only down the layers, each component is generated
from its one declared contract, and the public API imports."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import kfp_pachyderm
from kfp_pachyderm.kfp.compile import component_names, components_dir, load_component
from kfp_pachyderm.kfp.contract import contract_in
from kfp_pachyderm.steps.component import PfsStep, definition_in

PACKAGE = Path(kfp_pachyderm.__file__).parent
ROOT = PACKAGE.parent

# Lower numbers are lower layers; a module may import its own layer or a lower one.
LAYERS = {
    "kfp_pachyderm.errors": 0,
    "kfp_pachyderm.validation": 0,
    "kfp_pachyderm.codec": 1,
    "kfp_pachyderm.pfs": 2,
    "kfp_pachyderm.oci": 3,
    "kfp_pachyderm.kfp": 4,
    "kfp_pachyderm.lineage": 4,
    "kfp_pachyderm.modelimage": 4,
    "kfp_pachyderm.local": 5,
    "kfp_pachyderm.imagebuild": 5,
    "kfp_pachyderm.tfjob": 5,
    "kfp_pachyderm.seldon": 5,
    "kfp_pachyderm.mlserver": 5,
    "kfp_pachyderm.steps": 5,
    "kfp_pachyderm.summarizer": 5,
    "kfp_pachyderm.trainer": 6,
    "kfp_pachyderm.kserve": 6,
    "kfp_pachyderm.bodies": 7,
    "kfp_pachyderm.components": 8,
    "kfp_pachyderm.pipelines": 9,
    "kfp_pachyderm.cli": 10,
}


def layer_of(module: str) -> int | None:
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def sources() -> list[tuple[str, Path]]:
    found = []
    for folder, package in (
        (PACKAGE, "kfp_pachyderm"),
        (ROOT / "components", "kfp_pachyderm.components"),
        (ROOT / "pipelines", "kfp_pachyderm.pipelines"),
    ):
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            found.append((".".join((package, *parts)).removesuffix(".__init__"), path))
    return found


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("kfp_pachyderm.")}


def test_every_module_belongs_to_a_layer():
    loose = [module for module, _ in sources() if module != "kfp_pachyderm"]
    assert [m for m in loose if layer_of(m) is None] == []


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for module, path in sources():
        own = layer_of(module)
        if own is None:
            continue
        for imported in imported_modules(path):
            theirs = layer_of(imported)
            if theirs is not None and theirs > own:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_local_server_imports_no_client_module():
    """The local server shares with the client only the codec layer and the errors: nothing
    under kfp_pachyderm.pfs."""
    allowed = ("kfp_pachyderm.local", "kfp_pachyderm.codec", "kfp_pachyderm.errors")
    reaching = [
        f"{module} imports {imported}"
        for module, path in sources()
        if (module + ".").startswith("kfp_pachyderm.local.")
        for imported in imported_modules(path)
        if not any((imported + ".").startswith(name + ".") for name in allowed)
    ]
    assert reaching == []


# Raised on purpose, an error says which kind it is: UsageError (exit code 2) or
# OperationError (exit code 1), or one of their subclasses. The Seldon server runs in its image
# without the library and answers a bad request with a ValueError of its own.
_BARE_ERRORS = {"KfpPachydermError", "ValueError", "TypeError", "Exception", "RuntimeError"}
_STANDALONE = {"kfp_pachyderm.seldon.savedmodel_server"}


def test_every_raised_error_says_whether_it_is_usage_or_an_operation():
    bare = []
    for module, path in sources():
        if module in _STANDALONE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            made = node.exc if isinstance(node, ast.Raise) else node
            if not isinstance(made, ast.Call):
                continue
            name = getattr(made.func, "id", None)
            if name == "KfpPachydermError" or (made is not node and name in _BARE_ERRORS):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno} makes {name}")
    assert bare == []


def test_the_library_errors_derive_from_one_of_the_two_kinds():
    from kfp_pachyderm.errors import KfpPachydermError, OperationError, UsageError

    loose = []
    for module, _ in sources():
        if module.endswith("__main__") or module.startswith(
            ("kfp_pachyderm.components", "kfp_pachyderm.pipelines")
        ):
            continue
        try:
            namespace = vars(importlib.import_module(module))
        except ModuleNotFoundError as err:  # a serving runtime's module, run in its image
            assert not (err.name or "").startswith("kfp_pachyderm"), err
            continue
        for value in namespace.values():
            if (
                isinstance(value, type)
                and issubclass(value, KfpPachydermError)
                and value not in (KfpPachydermError, UsageError, OperationError)
                and not issubclass(value, UsageError | OperationError)
            ):
                loose.append(f"{value.__module__}.{value.__name__}")
    assert loose == []


def test_no_relative_imports():
    relative = []
    for module, path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                relative.append(module)
    assert relative == []


def test_modules_stay_small_or_say_why():
    large = []
    for module, path in sources():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > 550 and "over 500 lines" not in docstring:
            large.append(f"{module}: {lines} lines")
    assert large == []


def _contracts() -> list:
    found = [
        contract_in(inspect.getsource(load_component(n).python_func)) for n in component_names()
    ]
    return [contract for contract in found if contract is not None]


@pytest.mark.parametrize("component", component_names())
def test_every_component_is_generated_from_one_declaration(component: str):
    """``component.py`` declares no function or class: the component KFP ships is generated,
    from its body's contract (and runs that contract) or by ``pfs_step`` from a step
    function (and runs that function)."""
    path = components_dir() / component / "component.py"
    tree = ast.parse(path.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    made = load_component(component)
    shipped = inspect.getsource(made.python_func)
    if isinstance(made, PfsStep):
        assert definition_in(shipped) == made.definition and made.definition.name == component
        return
    contract = contract_in(shipped)
    assert contract is not None, f"{component} is neither a pfs_step nor made from a contract"
    assert shipped == contract.source() and contract.name == component
    assert dataclasses.fields(contract.inputs) and contract.inputs.__dataclass_params__.frozen


def _declared_here(cls: type) -> dict[str, str]:
    own = cls.__dict__.get("__annotations__", {})
    return {
        f.name: f"{f.metadata['declared'].role}: {f.default!r}: {f.metadata['declared'].doc}"
        for f in dataclasses.fields(cls)
        if f.name in own
    }


def test_no_component_parameter_is_declared_twice():
    """Each parameter is declared in one inputs class, shared by inheritance where components
    share it (the run identity, the output commit, the image-build options). A name declared
    again must mean something else there (another role, default or meaning: each flavour's
    builds repo, the namespace of a TFJob and of a served model)."""
    classes = {c.inputs for c in _contracts()}
    classes |= {base for c in classes for base in c.__mro__ if dataclasses.is_dataclass(base)}
    seen: dict[str, list[tuple[str, str]]] = {}
    for cls in classes:
        for name, default in _declared_here(cls).items():
            seen.setdefault(name, []).append((cls.__qualname__, default))
    twice = {
        name: where
        for name, where in seen.items()
        if len(where) > 1 and len({d for _, d in where}) < len(where)
    }
    assert twice == {}


def test_public_api_imports_from_the_package_root():
    for name in kfp_pachyderm.__all__:
        assert getattr(kfp_pachyderm, name) is not None, name


def test_the_package_root_exports_only_its_api():
    code = "import kfp_pachyderm as k; print(sorted(n for n in vars(k) if not n.startswith('_')))"
    public = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert public.strip() == "[]"  # names load on first use; no helper leaks
    assert dir(kfp_pachyderm) == sorted([*kfp_pachyderm.__all__, "__version__"])


def test_every_pipeline_has_a_spec():
    from kfp_pachyderm.pipelines import PIPELINES, SPECS

    assert set(SPECS) == set(PIPELINES)
    for name, pipeline in PIPELINES.items():
        spec = SPECS[name]
        assert spec.pipeline is pipeline and spec.name == name
        assert spec.data in inspect.signature(pipeline.pipeline_func).parameters, name
        assert spec.outputs and spec.result in spec.outputs, name
        assert all(output.branch and (output.repo or output.parameter) for output in spec.outputs)
        assert spec.demo_data, name
        assert all(callable(report) for report in spec.report), name


def _defines_default_branch(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Assign)
        and any(getattr(target, "id", None) == "DEFAULT_BRANCH" for target in node.targets)
        and isinstance(node.value, ast.Constant)
        for node in ast.walk(tree)
    )


def test_no_literal_default_branch_outside_its_constant():
    """The default branch is named once (``DEFAULT_BRANCH``): no other module spells it, as
    ``"master"`` or as a reference such as ``"repo@master"`` (prose in messages may)."""
    import re

    reference = re.compile(r"[\w.-]*@master")
    found = []
    for module, path in sources():
        tree = ast.parse(path.read_text())
        if _defines_default_branch(tree):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if node.value == "master" or reference.fullmatch(node.value):
                found.append(f"{module}:{node.lineno}: {node.value!r}")
    assert found == []


def test_the_exit_handler_does_not_load_the_oci_client():
    """The exit handler runs on every run's end, also a failed one: it loads only what it
    needs to finish commits, not the registry client the image builds use."""
    script = (
        "import sys, kfp_pachyderm.bodies.finish_open_commits\n"
        "print(','.join(m for m in sys.modules if m.startswith('kfp_pachyderm.oci')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""
