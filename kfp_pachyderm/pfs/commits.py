"""Repos, branches and commits as the components need them.

The central promise is :func:`output_commit`: a step's output commit is always finished, with
the error recorded when the step fails, because an open commit blocks everything downstream.

Example:
    >>> with output_commit(client, CommitRef.parse("model@master")) as out:   # doctest: +SKIP
    ...     put_tree(client, out.pfs_commit(), Path("model/"))
    >>> out.commit
    '0123456789ab4def0123456789abcdef'
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import KfpPachydermError, NotFoundError, UsageError
from kfp_pachyderm.pfs.provenance import (
    ProvenanceRecord,
    edit_metadata,
    read_provenance,
    record_provenance,
)
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors

log = logging.getLogger(__name__)

WAIT_ENV = "KFP_PACHYDERM_WAIT_FOR_WRITER"  # seconds a write waits for another run's open head
DEFAULT_WAIT_S = 3600.0
# The process writing an open commit (host|PID namespace|pid), so that a later writer can
# tell it is gone.
WRITER_KEY = "kfp_pachyderm.writer"


def ensure_repo(client: Client, ref: CommitRef, create: bool = True, description: str = "") -> None:
    """Make sure ``ref``'s repo exists; create it when ``create``, else raise NotFoundError."""
    with rpc_errors(f"checking repo {ref.project}/{ref.repo}"):
        if client.pfs.repo_exists(ref.pfs_repo()):
            return
    if not create:
        raise NotFoundError(
            f"repo {ref.project}/{ref.repo} does not exist; create it (pachctl create repo "
            f"{ref.repo}) or allow the step to create it"
        )
    try:
        with rpc_errors(f"creating repo {ref.project}/{ref.repo}"):
            client.pfs.create_repo(repo=ref.pfs_repo(), description=description)
    except KfpPachydermError as err:
        if not isinstance(err.__cause__, grpc.RpcError) or (
            err.__cause__.code() != grpc.StatusCode.ALREADY_EXISTS
        ):
            raise


def ensure_branch(
    client: Client,
    ref: CommitRef,
    provenance: Sequence[CommitRef] = (),
    finish_new_head: bool = True,
) -> pfs.BranchInfo:
    """Make sure ``ref``'s branch exists with exactly ``provenance`` as its direct provenance.

    With provenance, every commit to an upstream branch opens a commit with the same global ID
    on this branch, which is how a step's output gets Pachyderm-native provenance. Setting the
    provenance makes pachd give the branch a new, open, empty head commit whose provenance is
    the upstream heads; with ``finish_new_head`` that commit is finished here (see
    :func:`_finish_created_head`), so the call leaves nothing open; without it, the caller
    writes into it (:mod:`kfp_pachyderm.pfs.native`).
    """
    branch = ref.pfs_branch()
    wanted = sorted(str(p.branch_ref()) for p in provenance)
    before = None
    with rpc_errors(f"checking branch {ref.with_path(None)}"):
        if client.pfs.branch_exists(branch):
            info = client.pfs.inspect_branch(branch=branch)
            have = sorted(
                str(CommitRef(b.repo.name, b.name, project=b.repo.project.name))
                for b in info.direct_provenance
            )
            if have == wanted:
                return info
            before = info.head.id
    with rpc_errors(f"creating branch {ref.with_path(None)}"):
        client.pfs.create_branch(branch=branch, provenance=[p.pfs_branch() for p in provenance])
        info = client.pfs.inspect_branch(branch=branch)
    if provenance and finish_new_head:
        _finish_created_head(client, ref.branch_ref().with_path(None), info.head.id, before)
    return info


def _finish_created_head(client: Client, branch: CommitRef, head: str, before: str | None) -> None:
    """Finish ``head``, the commit that setting ``branch``'s provenance just made its head.

    pachd 2.12's ``createBranch`` gives a branch that gains provenance a new head commit
    (origin AUTO) that stays open (``makeEmptyCommit``, src/server/pfs/server/server_commit.go).
    Left open, it becomes the parent of the commit that the next upstream commit opens on this
    branch, and pachd reads or compacts no commit whose parent is still open. Only that commit
    is finished: a new head (not ``before``), still open, of origin AUTO, whose parent is
    finished (or absent) and which holds no change of its own. Anything else is left as it is.
    """
    if head == before:
        return
    info = inspect_commit(client, branch.at(head))
    if is_finished(info) or info.origin.kind != pfs.OriginKind.AUTO:
        return
    parent = info.parent_commit.id if info.parent_commit is not None else ""
    if parent and not is_finished(inspect_commit(client, branch.at(parent))):
        log.warning("%s: left its new head %s open: its parent %s is open", branch, head, parent)
        return
    with rpc_errors(f"checking the new head {branch.repo}@{head} is empty"):
        changed = next(
            iter(client.pfs.diff_file(new_file=pfs.File(commit=info.commit, path="/"))), None
        )
    if changed is not None:
        return
    with rpc_errors(f"finishing the new head {branch.repo}@{head}"):
        client.pfs.finish_commit(commit=info.commit)


def finish_unwritten(client: Client, ref: CommitRef, superseded_by: str) -> None:
    """Finish, with an error saying so, the open commits that branch provenance opened at
    ``ref`` and above it and that no step is writing (origin AUTO, no provenance record):
    commits for input commits no step ran on. pachd completes no commit whose parent is still
    open, so they would block every later commit of the branch."""
    stale = []
    at = ref
    while True:
        info = inspect_commit(client, at)
        if is_finished(info) or info.origin.kind != pfs.OriginKind.AUTO:
            break
        if read_provenance(info) is not None:  # a step is writing it: not ours to finish
            break
        stale.append(info)
        parent = info.parent_commit
        if parent is None or not parent.id:
            break
        at = ref.at(parent.id)
    for info in reversed(stale):
        message = f"superseded: no step wrote it {superseded_by}"
        with rpc_errors(f"finishing unwritten commit {ref.repo}@{info.commit.id}"):
            client.pfs.finish_commit(commit=info.commit, error=message)
        log.warning("%s@%s: %s", ref.repo, info.commit.id, message)


def output_branch_without_provenance(client: Client, ref: CommitRef) -> CommitRef:
    """The branch a step writes to (the default branch unless ``ref`` names one), created with
    its repo when missing, with any branch provenance it had REMOVED: pachd starts no commit
    on a branch with provenance. Commits that provenance opened and no step wrote are finished
    first, so nothing is left open."""
    target = ref.branch_ref()
    ensure_repo(client, target)
    with rpc_errors(f"checking branch {target}"):
        exists = client.pfs.branch_exists(target.pfs_branch())
    if exists:
        info = client.pfs.inspect_branch(branch=target.pfs_branch())
        if info.direct_provenance:
            finish_unwritten(client, target.at(info.head.id), "before its provenance was removed")
    ensure_branch(client, target)
    return target


def is_finished(info: pfs.CommitInfo) -> bool:
    """Whether the commit is finished: the SDK reports an unset ``finished`` timestamp as
    None or as the Unix epoch, so both mean "still open"."""
    return info.finished is not None and info.finished.year > 1970


def inspect_commit(client: Client, ref: CommitRef, wait: bool = False) -> pfs.CommitInfo:
    """The commit ``ref`` names (its ID, or its branch's head); with ``wait``, once finished."""
    state = pfs.CommitState.FINISHED if wait else pfs.CommitState.STARTED
    with rpc_errors(f"inspecting commit {ref.with_path(None)}"):
        return client.pfs.inspect_commit(commit=ref.pfs_commit(), wait=state)


def resolve(client: Client, ref: CommitRef) -> CommitRef:
    """``ref`` pinned to a commit ID: a branch is resolved to its head once, here."""
    if ref.commit:
        inspect_commit(client, ref)
        return ref
    info = inspect_commit(client, ref)
    return ref.at(info.commit.id)


def resolve_input(client: Client, ref: CommitRef) -> CommitRef:
    """``ref`` pinned to a commit a step may read: finished, and, when ``ref`` names a branch,
    without an error: a branch whose head a failed or interrupted step finished with an error
    is refused, naming the commit and its error. A commit named by its ID is read as it is
    (pinning an errored commit on purpose is allowed)."""
    info = inspect_commit(client, ref)
    pinned = ref if ref.commit else ref.at(info.commit.id)
    if not is_finished(info):
        raise UsageError(
            f"input {pinned.with_path(None)} is still open: a step reads finished commits only "
            "(finish it, or pass the commit of a finished run)"
        )
    if info.error and not ref.commit:
        raise UsageError(
            f"input {ref.with_path(None)} is at commit {info.commit.id}, which was finished "
            f"with an error ({info.error}); pass an earlier commit of the branch, or this one "
            f"by its ID ({ref.repo}@{info.commit.id}) to read it on purpose"
        )
    if info.error:
        log.warning("reading %s, which was finished with an error: %s", pinned, info.error)
    return pinned


def inspect_commit_set(client: Client, commit_id: str, wait: bool = False) -> list[pfs.CommitInfo]:
    """Every commit with global ID ``commit_id``; with ``wait``, once all have finished."""
    with rpc_errors(f"inspecting commit set {commit_id}"):
        return list(
            client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=commit_id), wait=wait)
        )


class OutputCommit:
    """An open commit a step is writing; ``ref`` pins repo, branch and commit ID."""

    def __init__(self, ref: CommitRef, native: bool):
        self.ref = ref
        self.native = native

    @property
    def commit(self) -> str:
        """The global commit ID."""
        return self.ref.commit

    def pfs_commit(self) -> pfs.Commit:
        """The SDK's Commit message for writes."""
        return self.ref.with_path(None).pfs_commit()


def _open_commit(
    client: Client, ref: CommitRef, same_id_as: str | None, record: ProvenanceRecord | None
) -> OutputCommit:
    if same_id_as:
        try:
            info = inspect_commit(client, ref.at(same_id_as))
        except NotFoundError:
            info = None
        if info is not None:
            if is_finished(info):
                raise UsageError(
                    f"output commit {ref.at(same_id_as)} is already finished; a step writes each "
                    "output commit once (rerun on a new input commit)"
                )
            return OutputCommit(ref.at(same_id_as), native=True)
    attempt = 0
    while True:
        attempt += 1
        clear_output_branch(client, ref, record)
        try:
            with rpc_errors(f"starting a commit on {ref.with_path(None)}"):
                commit = client.pfs.start_commit(branch=ref.pfs_branch())
            return OutputCommit(ref.at(commit.id), native=False)
        except UsageError as err:
            if attempt == 5 or "has not been finished" not in str(err):
                raise
            # another run started a commit since we looked, and may not have labelled it yet
            time.sleep(0.5 * attempt)


def _process_gone(host: str, pid: str) -> bool:
    """Whether process ``pid`` of ``host`` is known to be over: ``host`` is this one and the
    process no longer exists."""
    if not pid.isdigit() or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _writer_identity() -> str:
    """This process as an open commit's writer: host, PID namespace and PID. A process of
    another PID namespace (another container on a host-network node) is never judged by it."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}|{namespace}|{os.getpid()}"


def _writer_gone(info: pfs.CommitInfo, opener: ProvenanceRecord) -> bool:
    """Whether the process that opened a commit is known to be over: it ran on this host, in
    this PID namespace, and is gone. A commit from before writers were recorded is judged by
    the local run it belongs to."""
    writer = dict(info.metadata or {}).get(WRITER_KEY, "")
    if writer:
        here_host, here_namespace, _ = _writer_identity().split("|")
        host, namespace, pid = (writer.split("|") + ["", "", ""])[:3]
        same_place = (host, namespace) == (here_host, here_namespace) and namespace
        return bool(same_place) and _process_gone(host, pid)
    extra = opener.extra
    return _process_gone(extra.get("local_run_host", ""), extra.get("local_run_pid", ""))


def _abandoned(
    info: pfs.CommitInfo, opener: ProvenanceRecord, record: ProvenanceRecord | None
) -> str:
    """Why an open head's run is known to be over ("" when it is not): the process that
    opened it, on this host, is gone, or it is an earlier attempt of this very task."""
    if _writer_gone(info, opener):
        return "a local run that is gone"
    same_task = record is not None and record.kfp_run_id
    if same_task and (opener.kfp_run_id, opener.kfp_task_id) == (
        record.kfp_run_id,
        record.kfp_task_id,
    ):
        return "an earlier attempt of this task"
    return ""


def wait_for_writer(
    client: Client,
    ref: CommitRef,
    record: ProvenanceRecord | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """While another run that is not known to be over holds the head of ``ref``'s branch
    open, wait for it to finish, as Pachyderm queues a pipeline's jobs: two runs of one step
    write one after the other. Waits at most ``KFP_PACHYDERM_WAIT_FOR_WRITER`` seconds
    (default one hour) and says what it waits for; returns when the head is finished, gone,
    or abandoned (for :func:`output_commit` to finish), or when the time is up."""
    limit = _wait_limit()
    deadline = clock() + limit
    said = None
    while (head := open_head(client, ref)) is not None and not _abandoned(*head, record):
        info, opener = head
        now = clock()
        if now >= deadline:
            return
        if said is None or now - said >= 60:
            log.warning(
                "waiting for %s@%s (opened by step %s of run %s) to finish before writing; "
                "up to %.0f s more (%s)",
                ref.repo,
                info.commit.id,
                opener.step or "?",
                opener.kfp_run_id or "?",
                deadline - now,
                WAIT_ENV,
            )
            said = now
        sleep(min(1.0, max(deadline - now, 0.0)))


def _wait_limit() -> float:
    text = os.environ.get(WAIT_ENV, "")
    try:
        limit = float(text) if text else DEFAULT_WAIT_S
    except ValueError:
        limit = -1.0
    if not limit >= 0:
        raise UsageError(f"{WAIT_ENV}={text!r}: a number of seconds, e.g. 600")
    return limit


def clear_output_branch(client: Client, ref: CommitRef, record: ProvenanceRecord | None) -> None:
    """Before a new commit on ``ref``'s branch: wait for a live writer (:func:`wait_for_writer`);
    an open head that an interrupted run left (a killed process, a terminated KFP run) would
    block it forever, so finish it when its run is known to be over; otherwise, once the wait
    is up, say what is there and the command that finishes it."""
    wait_for_writer(client, ref, record)
    head = open_head(client, ref)
    if head is None:
        return
    info, opener = head
    branch = ref.branch_ref().with_path(None)
    found = (
        f"{branch} has an open commit {info.commit.id}, opened by step {opener.step or '?'} of "
        f"run {opener.kfp_run_id or '?'} at {info.started}"
    )
    why = _abandoned(info, opener, record)
    if why:
        message = f"abandoned by {why} (run {opener.kfp_run_id or '?'})"
        with rpc_errors(f"finishing abandoned commit {branch.repo}@{info.commit.id}"):
            client.pfs.finish_commit(commit=info.commit, error=message)
        log.warning("%s; finished it with the error: %s", found, message)
        return
    which = f"--run {opener.kfp_run_id}" if opener.kfp_run_id else f"--commit {info.commit.id}"
    raise UsageError(
        f"{found}, still open after waiting {_wait_limit():.0f} s ({WAIT_ENV}); if that run is "
        f"over, finish it with: kfp-pachyderm finish-open {branch.repo}@{branch.branch} {which}"
    )


@contextmanager
def output_commit(
    client: Client,
    ref: CommitRef,
    same_id_as: str | None = None,
    provenance: ProvenanceRecord | None = None,
    start_empty: bool = False,
) -> Iterator[OutputCommit]:
    """Open the output commit of a step, yield it, and always finish it.

    When the output branch has branch provenance on the input branch, a commit with the input's
    global ID (``same_id_as``) is already open on it: the output goes there, and Pachyderm's
    own provenance links them. Otherwise a new commit is started on ``ref``'s branch.
    Like any Pachyderm commit it holds its parent's files, so writing one file changes only
    that file; with ``start_empty`` it starts with no files, for an output that must hold
    exactly what its step writes.
    ``provenance`` is recorded in the commit's metadata and description. If the body raises,
    the commit is finished with the error (``pachctl inspect commit`` shows it) and the
    exception propagates.
    """
    out = _open_commit(client, ref, same_id_as, provenance)
    log.info("writing %s", out.ref.with_path(None))
    try:
        if start_empty:
            with rpc_errors(f"clearing {out.ref.with_path(None)}"):
                client.pfs.delete_file(commit=out.pfs_commit(), path="/")
        edit_metadata(client, out.ref, {WRITER_KEY: _writer_identity()})
        if provenance is not None:
            record_provenance(client, out.ref, provenance)
        yield out
    except BaseException as err:
        message = f"{type(err).__name__}: {err}"[:4000]
        with rpc_errors(f"finishing {out.ref.with_path(None)} with an error"):
            client.pfs.finish_commit(commit=out.pfs_commit(), error=message)
        log.error("finished %s with error: %s", out.ref.with_path(None), message)
        raise
    description = provenance.summary() if provenance is not None else ""
    with rpc_errors(f"finishing {out.ref.with_path(None)}"):
        client.pfs.finish_commit(commit=out.pfs_commit(), description=description)


def finished_head(client: Client, branch: CommitRef) -> tuple[CommitRef, ProvenanceRecord] | None:
    """The head of ``branch`` (or the commit it names) with its provenance record, if it is the
    kind of commit a step may reuse as its result: finished, without an error, written by this
    library. This is the one rule for reuse; each caller then decides whether the record
    describes the same work."""
    try:
        info = inspect_commit(client, branch if branch.commit else branch.branch_ref())
    except NotFoundError:
        return None
    record = read_provenance(info)
    if info.error or not is_finished(info) or record is None:
        return None
    return branch.with_path(None).at(info.commit.id), record


def open_head(client: Client, branch: CommitRef) -> tuple[pfs.CommitInfo, ProvenanceRecord] | None:
    """The head of ``branch`` with its provenance record, if it is still open and was opened
    by this library: the commit an interrupted step left, which its own rerun may adopt and
    the exit handler of its run may finish."""
    try:
        info = inspect_commit(client, branch.branch_ref())
    except NotFoundError:
        return None
    record = read_provenance(info)
    if is_finished(info) or record is None:
        return None
    return info, record


def finish_abandoned(client: Client, branch: CommitRef, kfp_run_id: str) -> bool:
    """Finish ``branch``'s head with an error if it is open and this KFP run opened it (its
    step died without cleaning up); return whether it did. Other runs' commits are left alone."""
    head = open_head(client, branch)
    if head is None or not kfp_run_id or head[1].kfp_run_id != kfp_run_id:
        return False
    info, record = head
    message = f"KFP run {kfp_run_id} ended before step {record.step or '?'} finished this commit"
    return finish_open_head(client, branch, info.commit.id, message)


def finish_open_head(client: Client, branch: CommitRef, commit_id: str, error: str) -> bool:
    """Finish the open commit ``commit_id`` on ``branch`` with ``error``, then look again:
    return whether it is finished now (never report a commit finished that is not)."""
    ref = branch.branch_ref().at(commit_id)
    with rpc_errors(f"finishing abandoned commit {branch.repo}@{commit_id}"):
        client.pfs.finish_commit(commit=ref.pfs_commit(), error=error)
    done = is_finished(inspect_commit(client, ref))
    if done:
        log.warning("%s@%s: %s", branch.repo, commit_id, error)
    return done


def reusable_result(
    client: Client, target: CommitRef, record: ProvenanceRecord
) -> CommitRef | None:
    """The head of ``target``'s branch if a step already produced it from exactly the same
    inputs, image and parameters: the step's result, reused instead of recomputed. This makes
    every step cache-correct by construction, whatever the runner's own cache does (kfp.local's
    cannot keep ``pfs://`` artifacts)."""
    head = finished_head(client, target)
    if head is None:
        return None
    ref, done = head
    same = (done.step, done.inputs, done.image, done.code, done.parameters) == (
        record.step,
        record.inputs,
        record.image,
        record.code,
        record.parameters,
    )
    return ref if same else None
