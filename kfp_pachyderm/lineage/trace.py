"""The upstream graph of a commit: every commit it came from, with what the library recorded.

Edges come from two places: Pachyderm's own commit provenance (``direct_provenance``, the
same-global-ID commits upstream) and the explicit :class:`ProvenanceRecord` inputs (which also
name older commits). The walk is breadth first and batched: each level costs at most one call
per repo, and a repo met a second time is listed once and served from memory after that, so the
number of round trips follows the depth of the graph and the number of repos, not its size.

Example:
    >>> graph = trace(client, CommitRef.parse("model@master"))      # doctest: +SKIP
    >>> print(graph.to_text())
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.codec.fastproto import to_datetime
from kfp_pachyderm.errors import InvalidReferenceError, NotFoundError
from kfp_pachyderm.pfs.commits import resolve
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors
from kfp_pachyderm.pfs.transfer import BytesChannel

PARALLEL_FETCHES = 8


@dataclass
class CommitNode:
    """One commit of the graph and the IDs (``project/repo@commit``) of its direct inputs."""

    id: str
    project: str
    repo: str
    commit: str
    branch: str
    size_bytes: int
    started: str
    finished: str
    origin: str
    error: str
    description: str
    record: dict | None
    upstream: list[str] = field(default_factory=list)
    depth: int = 0


@dataclass
class Lineage:
    """The graph rooted at ``root``; ``nodes`` maps node ID to node."""

    root: str
    nodes: dict[str, CommitNode]
    round_trips: int = 0

    def to_json(self) -> dict:
        """A JSON-ready dict: the root ID and the nodes in walk order."""
        return {"root": self.root, "nodes": [asdict(n) for n in self.nodes.values()]}

    def to_text(self) -> str:
        """An indented tree for a terminal; a commit seen before is shown once and referred to."""
        lines: list[str] = []
        shown: set[str] = set()

        def walk(node_id: str, indent: str) -> None:
            node = self.nodes[node_id]
            summary = _summary(node)
            if node_id in shown:
                lines.append(f"{indent}{node_id} (see above)")
                return
            shown.add(node_id)
            lines.append(f"{indent}{node_id}  {summary}")
            for up in node.upstream:
                walk(up, indent + "  <- ")

        walk(self.root, "")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A Markdown report: a Mermaid graph and a table of every commit."""
        ids = {node_id: f"c{i}" for i, node_id in enumerate(self.nodes)}
        out = [f"# Provenance of `{self.root}`", "", "```mermaid", "graph RL"]
        for node_id, node in self.nodes.items():
            out.append(f'  {ids[node_id]}["{node.project}/{node.repo}@{node.commit[:8]}"]')
            out += [f"  {ids[node_id]} --> {ids[up]}" for up in node.upstream]
        out += [
            "```",
            "",
            "| Commit | Branch | Size | Finished | Step | KFP run | Error |",
            "|---|---|---|---|---|---|---|",
        ]
        for node_id, node in self.nodes.items():
            record = node.record or {}
            out.append(
                f"| `{node_id}` | {node.branch} | {node.size_bytes} | {node.finished} | "
                f"{record.get('step', '')} | {record.get('kfp_run_id', '')} | {node.error} |"
            )
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        """A standalone HTML page with the graph drawn as SVG (root on the left, inputs to the
        right, one column per depth), and the details table; the KFP UI renders it."""
        columns: dict[int, list[CommitNode]] = defaultdict(list)
        for node in self.nodes.values():
            columns[node.depth].append(node)
        box_w, box_h, gap_x, gap_y = 260, 54, 80, 24
        pos = {}
        for depth, nodes in columns.items():
            for row, node in enumerate(nodes):
                pos[node.id] = (20 + depth * (box_w + gap_x), 20 + row * (box_h + gap_y))
        width = 40 + (max(columns) + 1) * (box_w + gap_x)
        height = 40 + max(len(n) for n in columns.values()) * (box_h + gap_y)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            'font-family="sans-serif" font-size="12">',
            '<defs><marker id="arrow" markerWidth="10" markerHeight="10" refX="9" refY="3" '
            'orient="auto"><path d="M0,0 L9,3 L0,6 z" fill="#555"/></marker></defs>',
        ]
        for node in self.nodes.values():
            x, y = pos[node.id]
            for up in node.upstream:
                ux, uy = pos[up]
                parts.append(
                    f'<line x1="{ux}" y1="{uy + box_h / 2}" x2="{x + box_w}" y2="{y + box_h / 2}" '
                    'stroke="#555" marker-end="url(#arrow)"/>'
                )
        for node in self.nodes.values():
            x, y = pos[node.id]
            fill = "#fde2e2" if node.error else ("#e3f2fd" if node.id == self.root else "#f5f5f5")
            title = html.escape(f"{node.project}/{node.repo}@{node.branch or node.commit[:8]}")
            detail = html.escape(f"{node.commit[:12]}  {(node.record or {}).get('step', '')}")
            parts += [
                f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="{fill}" '
                'stroke="#333"/>',
                f'<text x="{x + 10}" y="{y + 22}" font-weight="bold">{title}</text>',
                f'<text x="{x + 10}" y="{y + 40}">{detail}</text>',
            ]
        parts.append("</svg>")
        rows = "".join(
            f"<tr><td><code>{html.escape(n.id)}</code></td><td>{html.escape(n.branch)}</td>"
            f"<td>{n.size_bytes}</td><td>{html.escape(n.finished)}</td>"
            f"<td>{html.escape(json.dumps(n.record or {}, sort_keys=True))}</td>"
            f"<td>{html.escape(n.error)}</td></tr>"
            for n in self.nodes.values()
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Provenance of {html.escape(self.root)}</title></head><body>"
            f"<h2>Provenance of <code>{html.escape(self.root)}</code></h2>{''.join(parts)}"
            "<table border='1' cellpadding='4'><tr><th>Commit</th><th>Branch</th><th>Bytes</th>"
            f"<th>Finished</th><th>Recorded</th><th>Error</th></tr>{rows}</table></body></html>"
        )


def _summary(node: CommitNode) -> str:
    parts = [f"{node.size_bytes} bytes", node.finished or "open"]
    record = node.record or {}
    if record.get("step"):
        parts.append(f"step {record['step']}")
    if record.get("kfp_run_id"):
        parts.append(f"run {record['kfp_run_id']}")
    if node.error:
        parts.append(f"ERROR {node.error}")
    return ", ".join(parts)


def node_id(project: str, repo: str, commit: str) -> str:
    """``project/repo@commit``: how nodes are named."""
    return f"{project}/{repo}@{commit}"


def _explicit_inputs(record: ProvenanceRecord | None) -> list[tuple[str, str, str]]:
    inputs = []
    for text in record.inputs if record else []:
        try:
            ref = CommitRef.parse(text)
        except InvalidReferenceError:
            continue  # a path or URL input: recorded, but not a commit
        if ref.commit:
            inputs.append((ref.project, ref.repo, ref.commit))
    return inputs


def _time(value) -> str:
    when = to_datetime(value)
    return when.isoformat() if when is not None else ""


def _node(info, record: ProvenanceRecord | None, depth: int) -> CommitNode:
    repo = info.commit.repo
    return CommitNode(
        id=node_id(repo.project.name, repo.name, info.commit.id),
        project=repo.project.name,
        repo=repo.name,
        commit=info.commit.id,
        branch=info.commit.branch.name if info.commit.branch else "",
        size_bytes=info.details.size_bytes or info.size_bytes_upper_bound,
        started=_time(info.started),
        finished=_time(info.finished),
        origin=pfs.OriginKind(info.origin.kind).name if info.origin else "",
        error=info.error,
        description=info.description,
        record=dict(vars(record)) if record else None,
        depth=depth,
    )


class _CommitCache:
    """CommitInfos by (project, repo, id), fetched a repo at a time once a repo recurs.

    When a repo recurs, the repos the walk first met at or after that repo's first visit lie
    on the same cycle (retraining, a chain of steps) and will likely recur too: they are listed
    at the same time, concurrently, instead of one after the other as the walk reaches them.
    ``round_trips`` counts the requests sent.
    """

    def __init__(self, client: Client):
        self.channel = BytesChannel(client, read_streams_on_caller=True)
        self.infos: dict[tuple[str, str, str], object] = {}
        self.first_fetch: dict[tuple[str, str], int] = {}
        self.listed: set[tuple[str, str]] = set()
        self.round_trips = 0
        self.fetches = 0

    def fetch(self, keys: list[tuple[str, str, str]]) -> None:
        by_repo: dict[tuple[str, str], list[str]] = defaultdict(list)
        for project, repo, commit in keys:
            if (project, repo, commit) not in self.infos:
                by_repo[(project, repo)].append(commit)
        seen = self.first_fetch
        to_list = [r for r, commits in by_repo.items() if len(commits) > 1 or r in seen]
        to_inspect = [(r, commits[0]) for r, commits in by_repo.items() if r not in to_list]
        recurring = [seen[r] for r in by_repo if r in seen]
        if recurring:
            cycle = [r for r, first in seen.items() if first >= min(recurring)]
            to_list += sorted(set(cycle) - self.listed - set(to_list))
        jobs = [partial(self._list, r) for r in to_list]
        jobs += [partial(self._inspect, r, commit) for r, commit in to_inspect]
        self.round_trips += len(jobs)
        if len(jobs) <= 1:
            infos = [job() for job in jobs]
        else:
            with ThreadPoolExecutor(max_workers=min(len(jobs), PARALLEL_FETCHES)) as pool:
                infos = list(pool.map(lambda job: job(), jobs))
        for found in infos:
            for info in found:
                repo = info.commit.repo
                self.infos[(repo.project.name, repo.name, info.commit.id)] = info
        self.listed.update(to_list)
        for repo in by_repo:
            seen.setdefault(repo, self.fetches)
        self.fetches += 1

    def _list(self, repo: tuple[str, str]) -> list:
        project, name = repo
        with rpc_errors(f"listing commits of {project}/{name}"):
            return list(self.channel.list_commit(CommitRef(name, project=project).pfs_repo()))

    def _inspect(self, repo: tuple[str, str], commit: str) -> list:
        ref = CommitRef(repo[1], project=repo[0], commit=commit)
        with rpc_errors(f"inspecting commit {ref}"):
            return [self.channel.inspect_commit(ref.pfs_commit())]

    def get(self, key: tuple[str, str, str]):
        if key not in self.infos:
            project, repo, commit = key
            raise NotFoundError(f"upstream commit {node_id(project, repo, commit)} not found")
        return self.infos[key]

    def close(self) -> None:
        self.channel.close()


def trace(client: Client, ref: CommitRef | str) -> Lineage:
    """The full upstream graph of the commit ``ref`` names (a branch is resolved once); a string
    may also be an image reference pushed by build_seldon_image, whose labels name the model
    commit."""
    if isinstance(ref, str):
        from kfp_pachyderm.oci.labels import commit_or_image

        ref = commit_or_image(ref)
    root = resolve(client, ref)
    if root.path not in (None, "", "/"):
        with rpc_errors(f"checking {root}"):
            if not client.pfs.path_exists(root.pfs_file()):
                raise NotFoundError(f"{root} does not exist: no path {root.path} in that commit")
    cache = _CommitCache(client)
    try:
        return _walk(cache, root)
    finally:
        cache.close()


def _walk(cache: _CommitCache, root: CommitRef) -> Lineage:
    root_key = (root.project, root.repo, root.commit)
    nodes: dict[str, CommitNode] = {}
    frontier, depth = [root_key], 0
    while frontier:
        cache.fetch(frontier)
        next_frontier = []
        for key in frontier:
            info = cache.get(key)
            record = read_provenance(info)
            node = _node(info, record, depth)
            nodes[node.id] = node
            upstream = [
                (c.repo.project.name, c.repo.name, c.id) for c in info.direct_provenance
            ] + _explicit_inputs(record)
            for up in dict.fromkeys(upstream):
                node.upstream.append(node_id(*up))
                if node_id(*up) not in nodes and up not in next_frontier and up not in frontier:
                    next_frontier.append(up)
        frontier, depth = next_frontier, depth + 1
    return Lineage(node_id(*root_key), nodes, cache.round_trips)
