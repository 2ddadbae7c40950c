"""The KFP artifact of a Pachyderm commit.

A step's commit output is an artifact whose ``uri`` is ``pfs://project/repo@<commit id>[:/path]``
and whose ``metadata`` carries ``artifact_type: pachyderm.Commit``, the commit, repo, branch and
project, plus what the step measured (files, bytes, content digest). The bytes stay in
Pachyderm; KFP only passes the reference.

KFP 2.17 accepts artifact schema titles only in the ``system`` and ``google`` namespaces, so the
artifact's KFP type is ``system.Artifact`` and its Pachyderm type is in the metadata.
"""

from __future__ import annotations

from typing import Any

from kfp import dsl

from kfp_pachyderm.kfp.outcome import outcome_line
from kfp_pachyderm.pfs.refs import CommitRef

ARTIFACT_TYPE = "pachyderm.Commit"


def describe_commit(artifact: dsl.Artifact, ref: CommitRef, **measured: Any) -> None:
    """Point ``artifact`` at ``ref`` (which must name a commit ID), record ``measured`` (a
    measurement never replaces what names the commit), and print the step's outcome line
    (:mod:`~kfp_pachyderm.kfp.outcome`) into its log."""
    artifact.uri = ref.uri
    artifact.metadata.update(
        {
            **measured,
            "artifact_type": ARTIFACT_TYPE,
            "commit": ref.commit,
            "repo": ref.repo,
            "branch": ref.branch or "",
            "project": ref.project,
            "path": ref.path or "/",
        }
    )
    print(outcome_line(ref.uri, measured), flush=True)


def commit_of(artifact: dsl.Artifact) -> CommitRef:
    """The commit an artifact points at, from its ``uri`` (metadata may have been rewritten:
    kfp.local turns integers into floats)."""
    ref = CommitRef.parse(artifact.uri)
    branch = artifact.metadata.get("branch") or None
    return ref.on(branch) if branch else ref
