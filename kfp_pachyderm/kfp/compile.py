"""Finding, loading and compiling the package's components and pipelines to their checked-in YAML.

Example:
    kfp-pachyderm compile --image-registry registry.example.com/ml
"""

from __future__ import annotations

import importlib
from pathlib import Path

from kfp import compiler

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.contract import contract_in
from kfp_pachyderm.kfp.images import image_registry

COMPONENTS_PACKAGE = "kfp_pachyderm.components"
PIPELINES_PACKAGE = "kfp_pachyderm.pipelines"


def components_dir() -> Path:
    """The folder holding one subfolder per component."""
    return Path(importlib.import_module(COMPONENTS_PACKAGE).__file__).parent


def component_names() -> list[str]:
    """Every component, by folder name."""
    return sorted(p.parent.name for p in components_dir().glob("*/component.py"))


def load_component(name: str, registry: str | None = None):
    """The component object defined in ``components/<name>/component.py``; with
    ``registry``, (re)loaded with its images from there (the environment is left as it was)."""
    module_name = f"{COMPONENTS_PACKAGE}.{name}.component"
    with image_registry(registry):
        module = importlib.import_module(module_name)
        if registry:
            module = importlib.reload(module)
    return getattr(module, name)


def pipelines_dir() -> Path:
    """The folder of the pipeline modules and their compiled YAML."""
    return Path(importlib.import_module(PIPELINES_PACKAGE).__file__).parent


def compile_pipelines(out_dir: Path | None = None, registry: str | None = None) -> list[Path]:
    """Compile each pipeline to ``<out_dir or pipelines/>/<name>.yaml``; with ``registry``,
    reloaded with their images from there first (the environment is left as it was)."""
    with image_registry(registry):
        package = importlib.import_module(PIPELINES_PACKAGE)
        if registry:
            for name in component_names():  # the components the pipelines load, first
                load_component(name, registry)
            for name in ("common_tasks", *package.PIPELINES):
                importlib.reload(importlib.import_module(f"{PIPELINES_PACKAGE}.{name}"))
            package = importlib.reload(package)
    target_dir = out_dir or pipelines_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, pipeline in package.PIPELINES.items():
        written.append(compile_pipeline(pipeline, target_dir / f"{name}.yaml"))
    return written


def compile_pipeline(pipeline, output: Path) -> Path:
    """Compile one pipeline (a user's own, say) to the YAML file ``output``; return it."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(output))
    return output


def compile_components(out_dir: Path | None = None, registry: str | None = None) -> list[Path]:
    """Compile each component to ``<out_dir or its folder>/<name>/component.yaml``, and write
    its README (there, beside it) with the Inputs table of its contract."""
    written = []
    for name in component_names():
        target_dir = (out_dir / name) if out_dir else components_dir() / name
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / "component.yaml"
        compiler.Compiler().compile(load_component(name, registry), str(target))
        readme = (components_dir() / name / "README.md").read_text()
        (target_dir / "README.md").write_text(with_inputs_table(readme, inputs_table(name)))
        written.append(target)
    return written


def inputs_table(name: str) -> str:
    """The Inputs table of component ``name``: from its contract, or for a ``pfs_step`` from
    its function."""
    component = load_component(name)
    if hasattr(component, "inputs_table"):
        return component.inputs_table()
    contract = contract_in(component.component_spec.implementation.container.command[-1])
    if contract is None:
        raise UsageError(f"component {name} is neither a pfs_step nor made from a contract")
    return contract.inputs_table()


def with_inputs_table(readme: str, table: str) -> str:
    """``readme`` with the table under its ``## Inputs`` heading replaced by ``table`` (the
    prose after the table is kept)."""
    head, heading, rest = readme.partition("## Inputs\n")
    if not heading:
        raise UsageError("the component README has no '## Inputs' section to hold its table")
    lines = rest.lstrip("\n").split("\n")
    while lines and lines[0].startswith("|"):
        lines.pop(0)
    return f"{head}{heading}\n{table}" + "\n".join(lines)
