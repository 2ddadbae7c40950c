"""``kfp-pachyderm watch``: one pipeline run per new commit on a branch (the seeds' "update the
data and the model retrains").

Each finished commit on the branch gets at most one run of a pipeline, even across restarts of
the watcher: before submitting, the watcher marks the commit (commit metadata
``kfp_pachyderm.watch.<pipeline>``), and a marked commit is never submitted again. A watcher
killed between marking and submitting leaves that commit without a run (the mark says
``submitting``); it never makes two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.cli.run_remote import kfp_api_errors
from kfp_pachyderm.errors import RunCancelled
from kfp_pachyderm.pfs.provenance import edit_metadata
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors

log = logging.getLogger(__name__)

MARK_PREFIX = "kfp_pachyderm.watch."


def watch(
    client: Client,
    branch: CommitRef,
    pipeline: str,
    submit: Callable[[CommitRef], str],
    max_runs: int | None = None,
) -> list[tuple[str, str]]:
    """Submit ``submit(commit)`` once for each finished, error-free commit on ``branch``
    (existing ones first, then new ones as they arrive) that has no run of ``pipeline`` yet.
    Returns (commit ID, run ID) pairs; runs until ``max_runs`` submissions (None: forever)."""
    key = MARK_PREFIX + pipeline
    submitted: list[tuple[str, str]] = []
    target = branch.branch_ref()
    stream = client.pfs.subscribe_commit(
        repo=target.pfs_repo(), branch=target.branch, state=pfs.CommitState.FINISHED
    )
    try:
        for info in stream:
            commit = target.at(info.commit.id)
            if info.error or key in (info.metadata or {}):
                continue
            edit_metadata(client, commit, {key: "submitting"})
            run_id = submit(commit)
            edit_metadata(client, commit, {key: run_id})
            log.info("%s: submitted run %s of %s", commit, run_id, pipeline)
            print(f"{commit}: run {run_id} of {pipeline}", flush=True)
            submitted.append((commit.commit, run_id))
            if max_runs is not None and len(submitted) >= max_runs:
                break
    except grpc.RpcError as err:
        with rpc_errors(f"watching {target}"):
            raise err
    finally:
        stream.close()
    return submitted


def local_submitter(pipeline: str, server, params: dict[str, str]) -> Callable[[CommitRef], str]:
    """A ``submit`` for :func:`watch` that runs ``pipeline`` here, with kfp.local against the
    local ``server``, with its data parameter pinned to the new commit."""
    from kfp_pachyderm.cli.run_local import DEMO_INPUTS, run_once

    data_param = DEMO_INPUTS[pipeline][0]

    def submit(commit: CommitRef) -> str:
        try:
            run_id, _ = run_once(pipeline, server, {**params, data_param: str(commit)})
        except RunCancelled:
            raise
        except Exception as err:  # a failed run is that commit's result; the watch goes on
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"{commit}: the run of {pipeline} failed: {message}", flush=True)
            return f"failed: {message}"[:200]
        return run_id

    return submit


def kfp_submitter(host: str, pipeline: str, experiment: str, params: dict[str, str]):
    """A ``submit`` for :func:`watch` that starts ``pipeline`` on a KFP cluster with its data
    parameter pinned to the new commit."""
    import kfp

    from kfp_pachyderm.cli.run_local import DEMO_INPUTS
    from kfp_pachyderm.pipelines import PIPELINES

    data_param = DEMO_INPUTS[pipeline][0]
    with kfp_api_errors(host):
        client = kfp.Client(host=host)

    def submit(commit: CommitRef) -> str:
        with kfp_api_errors(host):
            run = client.create_run_from_pipeline_func(
                PIPELINES[pipeline],
                arguments={**params, data_param: str(commit)},
                experiment_name=experiment,
                run_name=f"{pipeline}-{commit.repo}-{commit.commit[:12]}",
            )
        return run.run_id

    return submit
