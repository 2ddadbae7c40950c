"""Reading commits inside a caller's transaction: full rows (provenance, subvenance and children
included) for many commits in a fixed number of queries, and resolving a commit reference."""

from __future__ import annotations

import json
import re
import sqlite3

from kfp_pachyderm.codec.names import COMMIT_ID_RE, COMMIT_ID_RULE, NAME_RE
from kfp_pachyderm.local.store.errors import invalid, not_found
from kfp_pachyderm.local.store.lookups import branch_exists, head_of, repo_id
from kfp_pachyderm.local.store.records import CommitRow, RepoKey

_COLUMNS = (
    "rid, cid, id, branch, origin, description, parent, started, finishing, finished, error, "
    "size_bytes, metadata"
)


def commit_row(db: sqlite3.Connection, cid: int) -> CommitRow:
    return commit_rows(db, [cid])[0]


def _commit(record: sqlite3.Row, repo: RepoKey) -> CommitRow:
    """A commit from its ``commits`` row, by column name; provenance and children come after."""
    return CommitRow(
        repo=repo,
        cid=record["cid"],
        id=record["id"],
        branch=record["branch"],
        origin=record["origin"],
        description=record["description"],
        parent=record["parent"],
        started=record["started"],
        finishing=record["finishing"],
        finished=record["finished"],
        error=record["error"],
        size_bytes=record["size_bytes"],
        metadata=json.loads(record["metadata"]),
    )


def commit_rows(db: sqlite3.Connection, cids: list[int]) -> list[CommitRow]:
    """Rows for ``cids`` in that order, with a fixed number of queries however many."""
    rows: dict[int, CommitRow] = {}
    repos = {rid: RepoKey(p, n) for rid, p, n in db.execute("SELECT rid, project, name FROM repos")}
    by_name = db.cursor()
    by_name.row_factory = sqlite3.Row
    for start in range(0, len(cids), 500):
        batch = cids[start : start + 500]
        marks = ",".join("?" * len(batch))
        for record in by_name.execute(
            f"SELECT {_COLUMNS} FROM commits WHERE cid IN ({marks})", batch
        ):
            rows[record["cid"]] = _commit(record, repos[record["rid"]])
        for column, other, target in (
            ("cid", "up_cid", "direct_provenance"),
            ("up_cid", "cid", "direct_subvenance"),
        ):
            for cid, rid, id_, branch in db.execute(
                f"SELECT p.{column}, c.rid, c.id, c.branch FROM commit_provenance p "
                f"JOIN commits c ON c.cid=p.{other} WHERE p.{column} IN ({marks}) "
                "ORDER BY c.cid",
                batch,
            ):
                getattr(rows[cid], target).append((repos[rid], id_, branch))
    by_parent: dict[tuple[RepoKey, str], list[CommitRow]] = {}
    for row in rows.values():
        by_parent.setdefault((row.repo, row.id), []).append(row)
    ids = sorted({row.id for row in rows.values()})
    for start in range(0, len(ids), 500):
        batch_ids = ids[start : start + 500]
        marks = ",".join("?" * len(batch_ids))
        for rid, parent, child in db.execute(
            f"SELECT rid, parent, id FROM commits WHERE parent IN ({marks}) ORDER BY cid",
            batch_ids,
        ):
            for row in by_parent.get((repos[rid], parent), []):
                row.children.append(child)
    return [rows[c] for c in cids]


_ANCESTRY = re.compile(
    r"(?P<dot>\.\d+)?(?:(?P<carets>\^+)|\^(?P<caret_n>\d+)|(?P<tildes>~+)|~(?P<tilde_n>\d+))?"
)


def parse_ancestry(ref: str) -> tuple[str, int, bool]:
    """(base, offset, from_root) of a commit reference with pachd's ancestry syntax
    (``CommitPicker.UnmarshalText`` and ``countOffsetAndClean``, src/pfs/pfs.go): ``^``, ``~``,
    ``^N`` or ``~N`` go back that many parents (``from_root`` False); ``branch.N`` is the N-th
    commit from the branch's root, offset N-1 from it, less any ``^N`` after it."""
    starts = [i for i in (ref.find(c) for c in "^~.") if i >= 0]
    if not starts:
        return ref, 0, False
    at = min(starts)
    found = _ANCESTRY.fullmatch(ref[at:])
    if found is None:
        raise invalid(f"calculate offset {ref}: count offset and clean: invalid ancestry format")
    back = len(found["carets"] or found["tildes"] or "") or int(
        found["caret_n"] or found["tilde_n"] or 0
    )
    if found["dot"] is None:
        return ref[:at], back, False
    root = int(found["dot"][1:]) - 1
    if back:
        if back >= root + 1:
            raise invalid(
                f"calculate offset {ref}: there should be less ancestors than descendants"
            )
        root -= back
    return ref[:at], root, True


def resolve_commit(
    db: sqlite3.Connection, repo: RepoKey, id_: str | None, branch: str | None = None
) -> CommitRow:
    """Find a commit by ID or a branch's head, either with pachd's ancestry syntax
    (:func:`parse_ancestry`)."""
    rid = repo_id(db, repo)
    ancestors, from_root = 0, False
    if id_ and branch and id_[0] in "^~.":
        id_ = branch + id_
    if id_ and any(c in id_ for c in "^~."):
        id_, ancestors, from_root = parse_ancestry(id_)
        if from_root and COMMIT_ID_RE.match(id_):
            raise invalid(f"invalid branch picker: name refers to a commit, not a branch: {id_}")
    if id_ and not COMMIT_ID_RE.match(id_) and NAME_RE.match(id_):
        branch, id_ = id_, None
    if id_:
        if not COMMIT_ID_RE.match(id_):
            raise invalid(f"commit ID {id_!r} is invalid: {COMMIT_ID_RULE}")
        row = db.execute("SELECT cid FROM commits WHERE rid=? AND id=?", (rid, id_)).fetchone()
        if row is None:
            raise not_found(f"commit {repo}@{id_} not found")
        cid = row[0]
    elif branch:
        head = head_of(db, rid, branch)
        if head is None and not branch_exists(db, rid, branch):
            raise not_found(f"branch {branch} not found in repo {repo}")
        if head is None:
            raise not_found(f"branch {branch} in repo {repo} has no head commit")
        (cid,) = db.execute("SELECT cid FROM commits WHERE rid=? AND id=?", (rid, head)).fetchone()
    else:
        raise invalid(f"a commit in repo {repo} needs an ID or a branch")
    if from_root:
        # pachd's pickCommitBranchRoot: the head's ancestry back to the root, through a window
        # of ``ancestors + 1`` commits; a chain shorter than the offset is an error
        chain = [cid]
        while (parent := _parent_cid(db, rid, chain[-1])) is not None:
            chain.append(parent)
        if len(chain) < ancestors or ancestors < 0:
            raise not_found(
                f"picking commit: invalid offset from branch root for head commit: "
                f"{repo}@{branch}, offset: {ancestors}, maximum depth: {len(chain)}"
            )
        return commit_row(db, chain[max(0, len(chain) - ancestors - 1)])
    for _ in range(ancestors):
        cid = _parent_cid(db, rid, cid)
        if cid is None:
            raise not_found(f"commit {repo}@{id_ or branch}^{ancestors} not found")
    return commit_row(db, cid)


def _parent_cid(db: sqlite3.Connection, rid: int, cid: int) -> int | None:
    """The row ID of commit ``cid``'s parent in repo ``rid``, or None at the root."""
    (parent,) = db.execute("SELECT parent FROM commits WHERE cid=?", (cid,)).fetchone()
    if parent is None:
        return None
    row = db.execute("SELECT cid FROM commits WHERE rid=? AND id=?", (rid, parent)).fetchone()
    return row[0] if row else None
