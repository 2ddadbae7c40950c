"""``kfp-pachyderm run PIPELINE --host URL``: submit a pipeline (built-in or the user's own) to a
KFP cluster and follow the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kfp_pachyderm.cli.targets import PipelineTarget
from kfp_pachyderm.errors import OperationError

TERMINAL_STATES = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED", "CANCELLED"}
POLL_S = 5.0


@contextmanager
def kfp_api_errors(host: str) -> Iterator[None]:
    """A KFP API that cannot be reached becomes one line naming the host."""
    import urllib3

    try:
        yield
    except (OSError, urllib3.exceptions.HTTPError) as err:
        reason = str(getattr(err, "reason", "") or err).split(":")[-1].strip()
        raise OperationError(f"cannot reach the KFP API at {host}: {reason}") from None


def submit_and_follow(
    target: PipelineTarget,
    host: str,
    experiment: str,
    params: dict[str, Any],
    client_factory: Callable | None = None,
    sleeper: Callable[[float], None] = time.sleep,
) -> bool:
    """Submit ``target``'s pipeline with ``params``, print each state change, and return
    whether the run succeeded."""
    import kfp

    with kfp_api_errors(host):
        client = (client_factory or kfp.Client)(host=host)
        run = client.create_run_from_pipeline_func(
            target.pipeline, arguments=params, experiment_name=experiment
        )
    print(f"submitted run {run.run_id} of {target.label} to {host}")
    last = None
    while True:
        with kfp_api_errors(host):
            state = str(client.get_run(run.run_id).state)
        if state != last:
            print(f"run {run.run_id}: {state}")
            last = state
        if state.upper() in TERMINAL_STATES:
            return state.upper() == "SUCCEEDED"
        sleeper(POLL_S)
