"""The body of every component made with ``pfs_step``: its inputs to commits, then the step."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import grpc
from pachyderm_sdk import Client

from kfp_pachyderm.errors import OperationError
from kfp_pachyderm.kfp.artifacts import describe_commit
from kfp_pachyderm.kfp.contract import REF_SUFFIX, commit_from, step_record
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.refs import CommitRef, check_pfs_name
from kfp_pachyderm.steps.definition import StepDefinition
from kfp_pachyderm.steps.run import run_step
from kfp_pachyderm.steps.signature import NATIVE_PARAMETER, RESERVED


def run(payload: str, namespace: dict[str, Any]) -> str:
    """Run the step the component's ``payload`` defines on the component's inputs
    (``namespace`` is its ``locals()``): every input and parameter checked before anything is
    written; describe the output commit (and log its metrics) and return its ID."""
    step = StepDefinition.from_payload(payload)
    check_pfs_name("output repo", namespace["output_repo"])
    check_pfs_name("output branch", namespace["output_branch"])
    step = replace(
        step, output_repo=namespace["output_repo"], output_branch=namespace["output_branch"]
    )
    inputs = {name: commit_from(namespace, name, step.name) for name in step.inputs}
    names = {*RESERVED, *step.inputs, *(n + REF_SUFFIX for n in step.inputs), "run"}
    parameters = {k: v for k, v in namespace.items() if k not in names}
    step.check_parameters(parameters)
    record = step_record()
    native = bool(namespace[NATIVE_PARAMETER])
    client = connect()
    result = run_step(client, step, inputs, parameters, record, native=native)
    metrics = _metrics(client, result.ref, step.metrics) if step.metrics else {}
    for key, value in metrics.items():
        namespace["metrics"].log_metric(key, value)
    counts = {
        "datums_ran": len(result.ran),
        "datums_carried": len(result.carried),
        "reused": result.reused,
    }
    describe_commit(namespace["commit"], result.ref, **{**metrics, **counts})
    return result.ref.commit


def _metrics(client: Client, ref: CommitRef, path: str) -> dict[str, float]:
    """The top-level numbers of the JSON object in the file ``path`` of the output commit."""
    try:
        with client.pfs.pfs_file(ref.with_path("/" + path).pfs_file()) as f:
            found = json.loads(f.read())
    except (grpc.RpcError, ValueError) as err:
        found = err
    if not isinstance(found, dict):
        raise OperationError(
            f"the step declares its metrics in {path}, but {ref} holds no JSON object there "
            f"({found})"
        )
    return {
        key: value
        for key, value in found.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
