"""One pipeline run per new commit on a branch (the seeds' "update the data and the model
retrains"), for ``kfp-pachyderm watch`` (whose submitters, in :mod:`kfp_pachyderm.cli.watch`,
run each commit locally or on a KFP cluster).

Each finished commit on the branch gets one run of a pipeline, even across restarts of the
watcher: before submitting, the watcher marks the commit (commit metadata
``kfp_pachyderm.watch.<pipeline>``: ``submitting``, then the run's ID, or ``failed: ...`` for
a local run that failed). On a restart every marked commit is checked with the submitter:

- its run succeeded, or is still going: nothing to do;
- its run failed or was cancelled, or the watcher stopped while submitting and no run exists
  (a KFP run is looked up by its name first, so a run that was submitted is never made twice):
  the commit is run again, once, with a line that says why; if that run too did not finish,
  the commit is skipped with a line naming the command that runs it.

A commit finished with an error is never run; a line says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import RunCancelled
from kfp_pachyderm.pfs.provenance import edit_metadata
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors

log = logging.getLogger(__name__)

MARK_PREFIX = "kfp_pachyderm.watch."
SUBMITTING = "submitting"
FAILED = "failed: "
RETRIED_SUFFIX = ".retried"


@dataclass(frozen=True)
class Submitter:
    """Where the watcher's runs go: ``submit(commit)`` starts one and returns its ID (or a
    ``failed: ...`` mark); ``unfinished(commit, mark)`` says why the run a mark records did
    not finish (None when it succeeded or is still going); ``hint(commit)`` is the command
    that runs a commit by hand."""

    submit: Callable[[CommitRef], str]
    unfinished: Callable[[CommitRef, str], str | None]
    hint: Callable[[CommitRef], str]


def watch(
    client: Client,
    branch: CommitRef,
    pipeline: str,
    submitter: Submitter,
    max_runs: int | None = None,
) -> list[tuple[str, str]]:
    """Run ``submitter`` once for each finished, error-free commit on ``branch`` (existing
    ones first, then new ones as they arrive) that has no finished run of ``pipeline`` (see
    the module docstring). Returns (commit ID, run ID) pairs; runs until ``max_runs``
    submissions (None: forever)."""
    key = MARK_PREFIX + pipeline
    submitted: list[tuple[str, str]] = []
    target = branch.branch_ref()
    stream = client.pfs.subscribe_commit(
        repo=target.pfs_repo(), branch=target.branch, state=pfs.CommitState.FINISHED
    )
    try:
        for info in stream:
            commit = target.at(info.commit.id)
            metadata = dict(info.metadata or {})
            if info.error:
                print(f"{commit}: not run: the commit has an error ({info.error})", flush=True)
                continue
            again = key in metadata
            if again and not _run_again(commit, metadata, key, pipeline, submitter):
                continue
            run_id = _submit(client, commit, key, submitter, again)
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


def _run_again(
    commit: CommitRef, metadata: dict[str, str], key: str, pipeline: str, submitter: Submitter
) -> bool:
    """Whether a marked commit runs again: once, when its run did not finish."""
    why = submitter.unfinished(commit, metadata[key])
    if why is None:
        return False
    if metadata.get(key + RETRIED_SUFFIX):
        print(
            f"{commit}: skipped: {why}, after one run again; run it with: {submitter.hint(commit)}",
            flush=True,
        )
        return False
    print(f"{commit}: {why}; running {pipeline} on it again", flush=True)
    return True


def _submit(client: Client, commit: CommitRef, key: str, submitter: Submitter, again: bool) -> str:
    retried = {key + RETRIED_SUFFIX: "1"} if again else {}
    edit_metadata(client, commit, {key: SUBMITTING, **retried})
    try:
        run_id = submitter.submit(commit)
    except RunCancelled:
        edit_metadata(client, commit, {key: FAILED + "cancelled"})
        raise
    edit_metadata(client, commit, {key: run_id})
    log.info("%s: submitted run %s", commit, run_id)
    return run_id
