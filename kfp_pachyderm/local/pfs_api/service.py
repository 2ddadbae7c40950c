"""The pfs_v2.API servicer: project, repo, branch and commit RPCs here, file RPCs from
:class:`~kfp_pachyderm.local.pfs_api.file_rpcs.FileRpcs`."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs

from kfp_pachyderm.local.pfs_api.file_rpcs import FileRpcs
from kfp_pachyderm.local.pfs_api.messages import (
    branch_info,
    branch_key,
    commit_info,
    commit_msg,
    commit_target,
    out,
    repo_info,
    repo_key,
    repo_msg,
    ts,
)
from kfp_pachyderm.local.store.errors import StoreError, invalid
from kfp_pachyderm.local.store.pfs_store import Store
from kfp_pachyderm.local.store.records import ProjectRow


class PfsApi(FileRpcs):
    """Handlers for pfs_v2.API; each takes (request, context) as grpcio calls them."""

    def __init__(self, store: Store):
        self.store = store

    # projects
    def CreateProject(self, req: pfs.CreateProjectRequest, ctx: grpc.ServicerContext) -> Empty:
        self.store.create_project(req.project.name, req.description, req.update)
        return Empty()

    def _project_info(self, row: ProjectRow) -> pfs.ProjectInfo:
        return out.ProjectInfo(
            project=out.Project(name=row.name),
            description=row.description,
            created_at=ts(row.created),
        )

    def InspectProject(
        self, req: pfs.InspectProjectRequest, ctx: grpc.ServicerContext
    ) -> pfs.ProjectInfo:
        return self._project_info(self.store.inspect_project(req.project.name))

    def InspectProjectV2(self, req: pfs.InspectProjectV2Request, ctx: grpc.ServicerContext):
        info = self._project_info(self.store.inspect_project(req.project.name))
        return out.InspectProjectV2Response(info=info, defaults_json="{}")

    def ListProject(
        self, req: pfs.ListProjectRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.ProjectInfo]:
        for row in self.store.list_projects():
            yield self._project_info(row)

    def DeleteProject(self, req: pfs.DeleteProjectRequest, ctx: grpc.ServicerContext) -> Empty:
        self.store.delete_project(req.project.name, req.force)
        return Empty()

    # repos
    def CreateRepo(self, req: pfs.CreateRepoRequest, ctx: grpc.ServicerContext) -> Empty:
        key = repo_key(req.repo)
        if req.repo.type not in ("", "user"):
            raise invalid(f"repo type {req.repo.type!r} is not supported by the local server")
        self.store.create_repo(key, req.description, req.update)
        return Empty()

    def InspectRepo(self, req: pfs.InspectRepoRequest, ctx: grpc.ServicerContext) -> pfs.RepoInfo:
        return repo_info(self.store.inspect_repo(repo_key(req.repo)))

    def ListRepo(
        self, req: pfs.ListRepoRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.RepoInfo]:
        if req.type not in ("", "user", "all"):
            return
        projects = [p.name for p in req.projects] or None
        for row in self.store.list_repos(projects):
            yield repo_info(row)

    def DeleteRepo(
        self, req: pfs.DeleteRepoRequest, ctx: grpc.ServicerContext
    ) -> pfs.DeleteRepoResponse:
        return out.DeleteRepoResponse(deleted=self.store.delete_repo(repo_key(req.repo), req.force))

    def DeleteRepos(
        self, req: pfs.DeleteReposRequest, ctx: grpc.ServicerContext
    ) -> pfs.DeleteReposResponse:
        if not req.all and not req.projects:  # pachd deletes nothing, not everything
            return out.DeleteReposResponse(repos=[])
        projects = None if req.all else [p.name for p in req.projects]
        rows = self.store.list_repos(projects)
        for row in rows:
            self.store.delete_repo(row.key, req.force)
        return out.DeleteReposResponse(repos=[repo_msg(r.key) for r in rows])

    def DeleteAll(self, req: Empty, ctx: grpc.ServicerContext) -> Empty:
        self.store.delete_all()
        return Empty()

    # branches
    def CreateBranch(self, req: pfs.CreateBranchRequest, ctx: grpc.ServicerContext) -> Empty:
        """Create or update a branch; ``new_commit_set`` is ignored, as pachd 2.12 ignores it
        (``CreateBranchInTransaction`` does not pass it to ``createBranch``)."""
        key = branch_key(req.branch)
        head = None
        if req.head and (req.head.id or (req.head.branch and req.head.branch.name)):
            repo, id_, branch = commit_target(req.head)
            if repo.name != key.repo.name:  # pachd's val_server.go, no status code
                raise StoreError("UNKNOWN", "branch and head commit must belong to the same repo")
            if repo != key.repo:
                raise invalid(f"head commit of {key} must be in repo {key.repo}, not {repo}")
            head = id_ or branch
        if req.trigger and req.trigger.branch:
            raise StoreError(
                "UNIMPLEMENTED", "branch triggers are not supported by the local server"
            )
        provenance = [branch_key(b) for b in req.provenance]
        self.store.create_branch(key, head, provenance)
        return Empty()

    def InspectBranch(
        self, req: pfs.InspectBranchRequest, ctx: grpc.ServicerContext
    ) -> pfs.BranchInfo:
        return branch_info(self.store.inspect_branch(branch_key(req.branch)))

    def ListBranch(
        self, req: pfs.ListBranchRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.BranchInfo]:
        repo = repo_key(req.repo) if req.repo and req.repo.name else None
        rows = self.store.list_branches(repo)
        if req.reverse:
            rows.reverse()
        for row in rows:
            yield branch_info(row)

    def DeleteBranch(self, req: pfs.DeleteBranchRequest, ctx: grpc.ServicerContext) -> Empty:
        self.store.delete_branch(branch_key(req.branch), req.force)
        return Empty()

    # commits
    def StartCommit(self, req: pfs.StartCommitRequest, ctx: grpc.ServicerContext) -> pfs.Commit:
        key = branch_key(req.branch)
        parent = None
        if req.parent and (req.parent.id or (req.parent.branch and req.parent.branch.name)):
            _, id_, branch = commit_target(req.parent)
            parent = id_ or branch
        row = self.store.start_commit(key, parent, req.description)
        return commit_msg(row.repo, row.id, row.branch)

    def FinishCommit(self, req: pfs.FinishCommitRequest, ctx: grpc.ServicerContext) -> Empty:
        repo, id_, branch = commit_target(req.commit)
        self.store.finish_commit(repo, id_, branch, req.error, req.description or None, req.force)
        return Empty()

    def InspectCommit(
        self, req: pfs.InspectCommitRequest, ctx: grpc.ServicerContext
    ) -> pfs.CommitInfo:
        repo, id_, branch = commit_target(req.commit)
        wait = req.wait not in (pfs.CommitState.COMMIT_STATE_UNKNOWN, pfs.CommitState.STARTED)
        row = self.store.inspect_commit(
            repo,
            id_,
            branch,
            wait,
            timeout=ctx.time_remaining(),
            cancelled=lambda: not ctx.is_active(),
            ready=req.wait == pfs.CommitState.READY,
        )
        return commit_info(row)

    def ListCommit(
        self, req: pfs.ListCommitRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.CommitInfo]:
        repo = repo_key(req.repo)

        def commit_id(c: pfs.Commit | None) -> str | None:
            if c is None or not (c.id or (c.branch and c.branch.name)):
                return None
            _, id_, branch = commit_target(c)
            return self.store.resolve(repo, id_, branch).id

        rows = self.store.list_commits(
            repo,
            origin=int(req.origin_kind),
            reverse=req.reverse,
            number=req.number,
            from_id=commit_id(req.from_),
            to_id=commit_id(req.to),
            started_time=req.started_time.timestamp() if req.started_time else None,
        )
        for row in rows:
            yield commit_info(row)

    def SubscribeCommit(
        self, req: pfs.SubscribeCommitRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.CommitInfo]:
        repo = repo_key(req.repo)
        from_id = None
        if req.from_ and (req.from_.id or (req.from_.branch and req.from_.branch.name)):
            _, id_, branch = commit_target(req.from_)
            from_id = self.store.resolve(repo, id_, branch).id
        wait_finished = req.state in (
            pfs.CommitState.FINISHED,
            pfs.CommitState.FINISHING,
            pfs.CommitState.READY,
        )
        for row in self.store.subscribe(
            repo, req.branch or None, from_id, wait_finished, cancelled=lambda: not ctx.is_active()
        ):
            if req.origin_kind and row.origin != int(req.origin_kind):
                continue
            yield commit_info(row)

    def InspectCommitSet(
        self, req: pfs.InspectCommitSetRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.CommitInfo]:
        if req.wait:
            rows = self.store.wait_commit_set(req.commit_set.id, lambda: not ctx.is_active())
        else:
            rows = self.store.commit_set(req.commit_set.id, with_provenance=True)
        for row in rows:
            yield commit_info(row)

    def ListCommitSet(
        self, req: pfs.ListCommitSetRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.CommitSetInfo]:
        for id_ in self.store.list_commit_sets():
            rows = self.store.commit_set(id_, with_provenance=True)
            yield out.CommitSetInfo(
                commit_set=out.CommitSet(id=id_), commits=[commit_info(r) for r in rows]
            )

    def DropCommitSet(self, req: pfs.DropCommitSetRequest, ctx: grpc.ServicerContext) -> Empty:
        self.store.drop_commit_set(req.commit_set.id)
        return Empty()

    def SquashCommitSet(self, req: pfs.SquashCommitSetRequest, ctx: grpc.ServicerContext) -> Empty:
        self.store.squash_commit_set(req.commit_set.id)
        return Empty()
