"""Kubeflow Pipelines pipelines of kfp-pachyderm, importable as ``kfp_pachyderm.pipelines``.

Each module defines one pipeline and, next to it, its ``SPEC``
(:class:`~kfp_pachyderm.kfp.pipeline_spec.PipelineSpec`: its data parameter, the branches its
steps write, its demo data and what prints its local result); its compiled YAML, for the KFP
UI, sits beside it. ``SPECS`` holds every module's spec, found by looking (no list to keep),
and everything that needs to know a pipeline (the catalogue, the command line, local runs)
reads it from there; each pipeline is also this package's attribute of its name.

>>> from kfp_pachyderm.pipelines import mnist_tfjob            # doctest: +SKIP
>>> kfp.Client(host).create_run_from_pipeline_func(mnist_tfjob, arguments={...})
"""

import importlib
import pkgutil


def _specs() -> dict:
    found = {}
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        spec = getattr(importlib.import_module(f"{__name__}.{module}"), "SPEC", None)
        if spec is not None:
            found[spec.name] = spec
    return found


SPECS = _specs()
PIPELINES = {name: spec.pipeline for name, spec in SPECS.items()}
globals().update(PIPELINES)

__all__ = ["PIPELINES", "SPECS", *PIPELINES]
