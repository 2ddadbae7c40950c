"""What each component runs inside its container: connect, call one library function, and
fill the KFP outputs. Component bodies call exactly one function here, so all logic is in the
library and unit-tested, and the component definitions stay thin."""

from __future__ import annotations

import json
from pathlib import Path

from kfp import dsl

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.kfp.artifacts import commit_of, describe_commit
from kfp_pachyderm.kfp.images import running_image
from kfp_pachyderm.lineage.openlineage import emit, run_events
from kfp_pachyderm.lineage.trace import trace
from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, kfp_ids
from kfp_pachyderm.pfs.refs import CommitRef, check_name


def run_commit_data(
    source: str,
    repo: str,
    branch: str,
    dest_path: str,
    description: str,
    create_repo: bool,
    project: str,
    kfp_run_id: str,
    kfp_task_id: str,
    commit: dsl.Artifact,
) -> str:
    """The commit_data component: commit ``source`` and describe the commit in ``commit``."""
    check_name("repo", repo)
    check_name("branch", branch)
    target = CommitRef(repo, branch=branch, project=project)
    run_id, task_id = kfp_ids(kfp_run_id, kfp_task_id)
    record = ProvenanceRecord(kfp_run_id=run_id, kfp_task_id=task_id, image=running_image())
    result = commit_data(connect(), source, target, dest_path, description, create_repo, record)
    describe_commit(
        commit,
        result.ref,
        files=result.files,
        bytes=result.bytes,
        content_digest=result.digest,
        reused=result.reused,
    )
    print(f"{'reused' if result.reused else 'committed'} {result.ref} ({result.files} files)")
    return result.ref.commit


def run_inspect_provenance(
    commit: dsl.Artifact | None,
    commit_ref: str,
    graph_json: dsl.Artifact,
    report_markdown: dsl.Artifact,
    report_html: dsl.Artifact,
    openlineage_target: str = "",
    kfp_host: str = "",
) -> str:
    """The inspect_provenance component: trace the commit, write the three reports and, with
    ``openlineage_target``, emit OpenLineage RunEvents there."""
    if (commit is None) == (not commit_ref):
        raise KfpPachydermError(
            "inspect_provenance needs exactly one of the commit artifact or commit_ref "
            f"(got commit={'set' if commit is not None else 'none'}, commit_ref={commit_ref!r})"
        )
    ref = commit_of(commit) if commit is not None else commit_ref
    client = connect()
    graph = trace(client, ref)
    Path(graph_json.path).write_text(json.dumps(graph.to_json(), indent=2))
    Path(report_markdown.path).write_text(graph.to_markdown())
    Path(report_html.path).write_text(graph.to_html())
    for artifact in (graph_json, report_markdown, report_html):
        artifact.metadata.update({"root": graph.root, "commits": len(graph.nodes)})
    print(graph.to_text())
    if openlineage_target:
        events = run_events(graph, kfp_host or "kfp", client.address)
        emit(events, openlineage_target)
        print(f"sent {len(events)} OpenLineage events to {openlineage_target}")
    return graph.root


def input_of(inputs: dict, step: str) -> CommitRef:
    """The input commit of a component: its ``input_commit`` artifact or its ``input_ref``."""
    if (inputs["input_commit"] is None) == (not inputs["input_ref"]):
        raise KfpPachydermError(
            f"{step} needs exactly one of input_commit and input_ref "
            f"(got input_ref={inputs['input_ref']!r})"
        )
    if inputs["input_commit"] is not None:
        return commit_of(inputs["input_commit"])
    return CommitRef.parse(inputs["input_ref"])


def _record(inputs: dict, **fields) -> ProvenanceRecord:
    run_id, task_id = kfp_ids(inputs["kfp_run_id"], inputs["kfp_task_id"])
    return ProvenanceRecord(kfp_run_id=run_id, kfp_task_id=task_id, image=running_image(), **fields)


def run_train(inputs: dict) -> str:
    """The train component: train in this pod and describe the model commit."""
    from kfp_pachyderm.trainer.in_pod import train_in_pod

    source = input_of(inputs, "train")
    target = CommitRef(inputs["output_repo"], branch=inputs["output_branch"])
    ref, metrics = train_in_pod(
        connect(), source, target, inputs["epochs"], inputs["batch_size"], _record(inputs)
    )
    describe_commit(inputs["commit"], ref, test_accuracy=metrics["test_accuracy"])
    for key in ("test_accuracy", "test_loss", "examples_per_second"):
        inputs["metrics"].log_metric(key, metrics[key])
    inputs["metrics"].log_metric("gpus", metrics["device"]["gpu_count"])
    return ref.commit


def run_gpu_check(inputs: dict) -> str:
    """The gpu_check component."""
    from kfp_pachyderm.trainer.in_pod import gpu_check

    source = input_of(inputs, "gpu_check")
    target = CommitRef(inputs["output_repo"], branch=inputs["output_branch"])
    ref = gpu_check(connect(), source, target, _record(inputs))
    describe_commit(inputs["commit"], ref)
    return ref.commit


def run_start_tfjob(inputs: dict) -> str:
    """The start_tfjob component: its inputs (``locals()`` of the component) to a TFJob run."""
    import shlex

    from kfp_pachyderm.tfjob.run import TFJobSettings, start_tfjob, tfjob_name

    def optional(value: int) -> int | None:
        return None if value < 0 else value

    source = input_of(inputs, "start_tfjob")
    settings = TFJobSettings(
        image=inputs["trainer_image"],
        command=shlex.split(inputs["command"]),
        args=shlex.split(inputs["args"]),
        chief=inputs["chief"],
        workers=inputs["workers"],
        ps=inputs["ps"],
        evaluators=inputs["evaluators"],
        gpus_per_replica=inputs["gpus_per_replica"],
        cpu=inputs["cpu"] or None,
        memory=inputs["memory"] or None,
        namespace=inputs["namespace"],
        timeout_s=inputs["timeout_seconds"],
        clean_pod_policy=inputs["clean_pod_policy"],
        ttl_seconds_after_finished=optional(inputs["ttl_seconds_after_finished"]),
        backoff_limit=optional(inputs["backoff_limit"]),
        delete_after=inputs["delete_after"],
        data_mode=inputs["data_mode"],
        version_logs=inputs["version_logs"],
        runner=inputs["runner"],
        token_secret=inputs["token_secret"] or None,
        service_account=inputs["service_account"] or None,
        s3_endpoint=inputs["s3_endpoint"],
    )
    record = _record(inputs, parameters={"command": inputs["command"], "args": inputs["args"]})
    name = tfjob_name(record.kfp_run_id, record.kfp_task_id or "start_tfjob")
    target = CommitRef(inputs["output_repo"], branch=inputs["output_branch"])
    listed = inputs["extra_input_refs"].split(",")
    extra = [CommitRef.parse(ref.strip()) for ref in listed if ref.strip()]
    ref, outcome = start_tfjob(connect(), settings, [source, *extra], target, record, name)
    describe_commit(inputs["commit"], ref, tfjob=name, tfjob_state=outcome.state)
    return ref.commit


def run_resolve_commit(
    ref: str, commit_source: str, kfp_run_id: str, kfp_task_id: str, commit: dsl.Artifact
) -> str:
    """The resolve_commit component: optionally commit data, then pin the branch head."""
    from kfp_pachyderm.pfs.commits import resolve

    target = CommitRef.parse(ref)
    if target.commit and commit_source:
        raise KfpPachydermError(
            f"commit_source needs a branch to commit to, but {ref!r} names a commit"
        )
    client = connect()
    if commit_source:
        run_id, task_id = kfp_ids(kfp_run_id, kfp_task_id)
        record = ProvenanceRecord(kfp_run_id=run_id, kfp_task_id=task_id)
        commit_data(client, commit_source, target, target.path or "/", "", True, record)
    pinned = resolve(client, target if target.commit else target.on(target.branch or "master"))
    describe_commit(commit, pinned)
    print(f"{ref} is {pinned}")
    return pinned.commit


def run_finish_open_commits(branches: str, kfp_run_id: str) -> int:
    """The finish_open_commits exit handler."""
    from kfp_pachyderm.pfs.commits import finish_abandoned

    kfp_run_id, _ = kfp_ids(kfp_run_id)
    client = connect()
    finished = 0
    for text in filter(None, (b.strip() for b in branches.split(","))):
        if finish_abandoned(client, CommitRef.parse(text), kfp_run_id):
            finished += 1
    print(f"finished {finished} commit(s) left open by run {kfp_run_id}")
    return finished
