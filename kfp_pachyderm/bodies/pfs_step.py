"""The body of every component made with ``pfs_step``: its inputs to commits, then the step."""

from __future__ import annotations

import json
from typing import Any

from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.contract import REF_SUFFIX, commit_from, step_record
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.steps.definition import StepDefinition
from kfp_pachyderm.steps.run import run_step
from kfp_pachyderm.steps.signature import NATIVE_PARAMETER


def run(payload: str, namespace: dict[str, Any]) -> str:
    """Run the step the component's ``payload`` defines on the component's inputs
    (``namespace`` is its ``locals()``); describe the output commit and return its ID."""
    fields = json.loads(payload)
    step = StepDefinition(**{**fields, "inputs": tuple(fields["inputs"])})
    inputs = {name: commit_from(namespace, name, step.name) for name in step.inputs}
    names = {"commit", NATIVE_PARAMETER, *step.inputs, *(n + REF_SUFFIX for n in step.inputs)}
    parameters = {k: v for k, v in namespace.items() if k not in names and k != "run"}
    record = step_record()
    native = bool(namespace[NATIVE_PARAMETER])
    result = run_step(connect(), step, inputs, parameters, record, native=native)
    describe_commit(
        namespace["commit"],
        result.ref,
        datums_ran=len(result.ran),
        datums_carried=len(result.carried),
        reused=result.reused,
    )
    return result.ref.commit
