"""What each component runs inside its container: connect, call one library function, and
fill the KFP outputs. Component bodies call exactly one function here, so all logic is in the
library and unit-tested, and the component definitions stay thin."""

from __future__ import annotations

from kfp import dsl

from .artifacts import describe_commit
from .commit_data import commit_data
from .connection import connect
from .provenance import ProvenanceRecord
from .refs import CommitRef, check_name


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
    record = ProvenanceRecord(kfp_run_id=kfp_run_id, kfp_task_id=kfp_task_id)
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
