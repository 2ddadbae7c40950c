"""pfs_v2's file RPCs: ModifyFile, InspectFile, ListFile, WalkFile, GlobFile, DiffFile, GetFile
and GetFileTAR."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs

from kfp_pachyderm.codec.wire import encode_bytes_value
from kfp_pachyderm.local.pfs_api.messages import commit_target, file_info, out
from kfp_pachyderm.local.pfs_api.modify_file import ModifyFileSession
from kfp_pachyderm.local.pfs_api.trees import GET_FILE_CHUNK, Tree, coalesce, glob_regex, tar_stream
from kfp_pachyderm.local.store.errors import StoreError, not_found
from kfp_pachyderm.local.store.paths import clean_path
from kfp_pachyderm.local.store.pfs_store import Store
from kfp_pachyderm.local.store.records import CommitRow


class FileRpcs:
    """The file RPC handlers of :class:`~kfp_pachyderm.local.pfs_api.service.PfsApi`."""

    store: Store

    def _commit(self, commit: pfs.Commit | None) -> CommitRow:
        repo, id_, branch = commit_target(commit)
        return self.store.resolve(repo, id_, branch)

    def ModifyFile(self, requests: Iterable, ctx: grpc.ServicerContext) -> Empty:
        ModifyFileSession(self.store).run(iter(requests), ctx)
        return Empty()

    def _entry(self, commit: CommitRow, path: str) -> tuple[str, bool, int, bytes]:
        for entry in Tree(self.store, commit, path).entries():
            if entry[0] == path:
                return entry
        if path == "/":
            return ("/", True, 0, hashlib.sha256().digest())
        raise not_found(f"file {path} not found in repo {commit.repo} at commit {commit.id}")

    def InspectFile(self, req: pfs.InspectFileRequest, ctx: grpc.ServicerContext) -> pfs.FileInfo:
        commit = self._commit(req.file.commit)
        return file_info(commit, self._entry(commit, clean_path(req.file.path)))

    def ListFile(
        self, req: pfs.ListFileRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.FileInfo]:
        commit = self._commit(req.file.commit)
        path = clean_path(req.file.path)
        entry = self._entry(commit, path)
        if not entry[1]:
            entries = [entry]
        else:
            prefix = path.rstrip("/") + "/"
            entries = [
                e
                for e in Tree(self.store, commit, path).entries()
                if e[0] != path and e[0].startswith(prefix) and "/" not in e[0][len(prefix) :]
            ]
        yield from self._page(commit, entries, req.pagination_marker, req.number, req.reverse)

    def WalkFile(
        self, req: pfs.WalkFileRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.FileInfo]:
        commit = self._commit(req.file.commit)
        path = clean_path(req.file.path)
        self._entry(commit, path)
        entries = Tree(self.store, commit, path).entries()
        if path != "/":
            entries = [e for e in entries if e[0] == path or e[0].startswith(path + "/")]
        yield from self._page(commit, entries, req.pagination_marker, req.number, req.reverse)

    def _page(
        self,
        commit: CommitRow,
        entries: list[tuple[str, bool, int, bytes]],
        marker: pfs.File | None,
        number: int,
        reverse: bool,
    ) -> Iterator[pfs.FileInfo]:
        # pachd's validatePagination (server_file.go), errors without a status code
        if reverse and not number:
            raise StoreError("UNKNOWN", "number must be > 0 when reverse is true")
        if number > 100000:
            raise StoreError("UNKNOWN", "cannot return more than 100000 files at a time")
        if reverse:
            entries = list(reversed(entries))
        if marker and marker.path:
            after = clean_path(marker.path)
            keys = [e[0] for e in entries]
            entries = entries[keys.index(after) + 1 :] if after in keys else entries
        if number:
            entries = entries[:number]
        for entry in entries:
            yield file_info(commit, entry)

    def GlobFile(
        self, req: pfs.GlobFileRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.FileInfo]:
        commit = self._commit(req.commit)
        for entry in _glob(Tree(self.store, commit), req.pattern):
            yield file_info(commit, entry)

    def DiffFile(
        self, req: pfs.DiffFileRequest, ctx: grpc.ServicerContext
    ) -> Iterator[pfs.DiffFileResponse]:
        new_commit = self._commit(req.new_file.commit)
        new_path = clean_path(req.new_file.path)
        if req.old_file and req.old_file.commit and req.old_file.commit.repo:
            old_commit = self._commit(req.old_file.commit)
            old_path = clean_path(req.old_file.path)
        else:
            parent = new_commit.parent
            old_commit = self.store.resolve(new_commit.repo, parent) if parent else None
            old_path = new_path

        def files(commit: CommitRow | None, path: str) -> dict[str, tuple]:
            if commit is None:
                return {}
            return {
                e[0]: e
                for e in Tree(self.store, commit, path).entries()
                if not e[1] and (e[0] == path or e[0].startswith(path.rstrip("/") + "/"))
            }

        new, old = files(new_commit, new_path), files(old_commit, old_path)
        for path in sorted(set(new) | set(old)):
            if path in new and path in old and new[path][3] == old[path][3]:
                continue
            yield out.DiffFileResponse(
                new_file=file_info(new_commit, new[path]) if path in new else None,
                old_file=file_info(old_commit, old[path]) if path in old else None,
            )

    def GetFile(self, req: pfs.GetFileRequest, ctx: grpc.ServicerContext) -> Iterator[bytes]:
        if req.url:
            raise StoreError(
                "UNIMPLEMENTED", "GetFile to a URL (egress) is not supported by the local server"
            )
        commit = self._commit(req.file.commit)
        path = clean_path(req.file.path)
        found = self.store.file_blob(commit, path)
        if found is None:
            self._entry(commit, path)
            raise StoreError(
                "INVALID_ARGUMENT",
                f"cannot get directory or non-regular file {path} in commit {commit}. "
                "Use GetFileTAR instead",
            )
        blob, _ = found
        for chunk in self.store.blobs.read(blob, offset=req.offset, chunk=GET_FILE_CHUNK):
            yield encode_bytes_value(chunk)

    def GetFileTAR(self, req: pfs.GetFileRequest, ctx: grpc.ServicerContext) -> Iterator[bytes]:
        commit = self._commit(req.file.commit)
        path = clean_path(req.file.path)
        files = None
        if any(c in path for c in "*?["):
            # pachd's getFile takes the path as a glob: each match, a directory with its files
            tree = Tree(self.store, commit)
            matched = {e[0] for e in _glob(tree, req.file.path)}
            if not matched:
                raise not_found(
                    f"file {path} not found in repo {commit.repo} at commit {commit.id}"
                )
            files = [f for f in tree.files if any(p in matched for p in _ancestors(f[0]))]
        else:
            self._entry(commit, path)
        for chunk in coalesce(tar_stream(self.store, commit, path, files), GET_FILE_CHUNK):
            yield encode_bytes_value(chunk)


def _glob(tree: Tree, pattern: str) -> list[tuple[str, bool, int, bytes]]:
    """The entries of ``tree`` that ``pattern`` matches; the root ``/`` only for the pattern
    ``/`` itself (pachd's ``globMatchFunction`` trims the trailing slash, leaving the root
    empty)."""
    regex = glob_regex(pattern)
    root = pattern in ("", "/") or clean_path(pattern) == "/"
    return [e for e in tree.entries() if regex.match(e[0]) and (root or e[0] != "/")]


def _ancestors(path: str) -> Iterator[str]:
    """``path`` and each directory above it, up to ``/``."""
    yield path
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        yield path
