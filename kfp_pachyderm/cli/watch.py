"""``kfp-pachyderm watch``: the submitters of the commit watcher
(:mod:`kfp_pachyderm.kfp.watcher`): each commit's run here, with kfp.local against the local
server, or on the KFP cluster at ``--host``, with the pipeline's data parameter (its spec's)
pinned to the commit."""

from __future__ import annotations

from kfp_pachyderm.cli.run_remote import kfp_api_errors
from kfp_pachyderm.errors import RunCancelled
from kfp_pachyderm.kfp.pipeline_spec import PipelineSpec
from kfp_pachyderm.kfp.watcher import FAILED, SUBMITTING, Submitter
from kfp_pachyderm.pfs.refs import CommitRef


def local_submitter(target, spec: PipelineSpec, server, params: dict) -> Submitter:
    """Runs of ``target`` here, with kfp.local against the local ``server``, with its
    ``spec``'s data parameter pinned to the new commit. A run that fails is that commit's
    result (marked ``failed: ...``); the watch goes on."""
    from kfp_pachyderm.cli.run_local import run_once

    data_param = spec.data

    def submit(commit: CommitRef) -> str:
        try:
            run_id, _ = run_once(target, spec, server, {**params, data_param: str(commit)})
        except RunCancelled:
            raise
        except Exception as err:
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"{commit}: the run of {target.label} failed: {message}", flush=True)
            return f"{FAILED}{message}"[:200]
        return run_id

    def unfinished(commit: CommitRef, mark: str) -> str | None:
        if mark == SUBMITTING:
            return "its run was cancelled (the watcher stopped during it)"
        if mark.startswith(FAILED):
            return f"its run {mark}"
        return None

    def hint(commit: CommitRef) -> str:
        return f"kfp-pachyderm run {target.label} --local --param {data_param}={commit}"

    return Submitter(submit, unfinished, hint)


def kfp_submitter(
    host: str, target, spec: PipelineSpec, experiment: str, params: dict
) -> Submitter:
    """Runs of ``target`` on the KFP cluster at ``host``, with its ``spec``'s data parameter
    pinned to the new commit, each named after its commit so that a restarted watcher finds
    it."""
    import kfp

    data_param = spec.data

    with kfp_api_errors(host):
        client = kfp.Client(host=host)

    def run_name(commit: CommitRef) -> str:
        return f"{target.name}-{commit.repo}-{commit.commit[:12]}"

    def submit(commit: CommitRef) -> str:
        with kfp_api_errors(host):
            run = client.create_run_from_pipeline_func(
                target.pipeline,
                arguments={**params, data_param: str(commit)},
                experiment_name=experiment,
                run_name=run_name(commit),
            )
        return run.run_id

    def unfinished(commit: CommitRef, mark: str) -> str | None:
        with kfp_api_errors(host):
            if mark == SUBMITTING:
                found = _run_named(client, run_name(commit))
                if found is None:
                    return "the watcher stopped before its run was submitted"
                mark = found
            state = str(client.get_run(mark).state).upper()
        if state in ("FAILED", "CANCELED", "CANCELLED", "CANCELING"):
            return f"its run {mark} ended {state.lower()}"
        return None

    def hint(commit: CommitRef) -> str:
        return f"kfp-pachyderm run {target.label} --host {host} --param {data_param}={commit}"

    return Submitter(submit, unfinished, hint)


def _run_named(client, name: str) -> str | None:
    """The ID of the newest KFP run called ``name``, if there is one."""
    import json

    query = {"predicates": [{"key": "display_name", "operation": "EQUALS", "stringValue": name}]}
    response = client.list_runs(filter=json.dumps(query), sort_by="created_at desc", page_size=1)
    runs = response.runs or []
    return runs[0].run_id if runs else None
