"""The local Pachyderm server: pachd's gRPC API subset on a real socket, for the real client.

It is a development and test default, not Pachyderm: it speaks the part of pfs_v2 that this
library and pachyderm_sdk's PFS helpers use, plus ``/metadata.API/EditMetadata`` and
``/versionpb_v2.API/GetVersion``. Every other RPC answers UNIMPLEMENTED with its name.

Example:
    >>> from kfp_pachyderm.local.server import LocalPachyderm
    >>> with LocalPachyderm(tmp_path) as server:           # doctest: +SKIP
    ...     client = pachyderm_sdk.Client.from_pachd_address(server.address)
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import betterproto
import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import metadata, pfs, version

from kfp_pachyderm.codec.channel import CHANNEL_OPTIONS
from kfp_pachyderm.codec.names import DEFAULT_PROJECT
from kfp_pachyderm.codec.wire import decode_modify_file
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.local.pfs_api.service import PfsApi
from kfp_pachyderm.local.store.errors import StoreError
from kfp_pachyderm.local.store.pfs_store import Store
from kfp_pachyderm.local.store.records import (
    BranchKey,
    BranchTarget,
    CommitTarget,
    MetadataTarget,
    ProjectTarget,
    RepoKey,
    RepoTarget,
)

log = logging.getLogger(__name__)

SERVER_VERSION = version.Version(major=2, minor=12, micro=0, additional="-kfp-pachyderm-local")
UNAUTHENTICATED_METHODS = {"/versionpb_v2.API/GetVersion"}

_UNARY, _SERVER_STREAM, _CLIENT_STREAM = "unary", "server_stream", "client_stream"

PFS_METHODS: dict[str, tuple[str, type]] = {
    **{
        name: (_UNARY, getattr(pfs, f"{name}Request"))
        for name in (
            "CreateRepo",
            "InspectRepo",
            "DeleteRepo",
            "DeleteRepos",
            "StartCommit",
            "FinishCommit",
            "InspectCommit",
            "DropCommitSet",
            "SquashCommitSet",
            "CreateBranch",
            "InspectBranch",
            "DeleteBranch",
            "InspectFile",
            "CreateProject",
            "InspectProject",
            "InspectProjectV2",
            "DeleteProject",
        )
    },
    **{
        name: (_SERVER_STREAM, getattr(pfs, f"{name}Request"))
        for name in (
            "ListRepo",
            "ListCommit",
            "SubscribeCommit",
            "InspectCommitSet",
            "ListCommitSet",
            "ListBranch",
            "GetFile",
            "ListFile",
            "WalkFile",
            "GlobFile",
            "DiffFile",
            "ListProject",
        )
    },
    "GetFileTAR": (_SERVER_STREAM, pfs.GetFileRequest),
    "DeleteAll": (_UNARY, Empty),
    "ModifyFile": (_CLIENT_STREAM, None),
}


def _serialize(message) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


class MetadataApi:
    """``/metadata.API/EditMetadata`` for projects, repos, branches and commits."""

    def __init__(self, store: Store):
        self.store = store

    def EditMetadata(self, req: metadata.EditMetadataRequest, ctx) -> metadata.EditMetadataResponse:
        for index, edit in enumerate(req.edits):
            target = self._target(edit)
            op, body = betterproto.which_one_of(edit, "op")

            def apply(current: dict[str, str], op=op, body=body, index=index) -> dict[str, str]:
                if op == "replace":
                    return dict(body.replacement)
                if not body.key:
                    raise StoreError("INVALID_ARGUMENT", f"edit #{index}: the key may not be empty")
                if op == "add_key":
                    if body.key in current:
                        raise StoreError(
                            "FAILED_PRECONDITION",
                            f"apply edits: edit #{index}: add_key target key {body.key!r} "
                            "already exists; use edit_key instead",
                        )
                    return {**current, body.key: body.value}
                if op == "edit_key":
                    return {**current, body.key: body.value}
                if op == "delete_key":
                    return {k: v for k, v in current.items() if k != body.key}
                raise StoreError("INVALID_ARGUMENT", f"edit #{index} has no operation")

            self.store.edit_metadata(target, apply)
        return metadata.EditMetadataResponse()

    @staticmethod
    def _repo(picker: pfs.RepoPicker) -> RepoKey:
        name = picker.name
        project = name.project.name if name.project and name.project.name else DEFAULT_PROJECT
        return RepoKey(project, name.name)

    def _target(self, edit: metadata.Edit) -> MetadataTarget:
        kind, picker = betterproto.which_one_of(edit, "target")
        if kind == "project":
            return ProjectTarget(picker.name)
        if kind == "repo":
            return RepoTarget(self._repo(picker))
        if kind == "branch":
            return BranchTarget(BranchKey(self._repo(picker.name.repo), picker.name.name))
        if kind == "commit":
            which, inner = betterproto.which_one_of(picker, "picker")
            if which == "id":
                return CommitTarget(self._repo(inner.repo), id=inner.id)
            if which == "branch_head":
                return CommitTarget(self._repo(inner.name.repo), branch=inner.name.name)
            raise StoreError(
                "UNIMPLEMENTED", f"commit picker {which!r} is not supported by the local server"
            )
        raise StoreError(
            "UNIMPLEMENTED", f"metadata of a {kind} is not supported by the local server"
        )


class VersionApi:
    def GetVersion(self, req: Empty, ctx) -> version.Version:
        return SERVER_VERSION


class _Handlers(grpc.GenericRpcHandler):
    """Routes every method: supported ones to their handler, the rest to UNIMPLEMENTED."""

    def __init__(self, store: Store, token: str | None):
        self._token = token
        self._routes: dict[str, grpc.RpcMethodHandler] = {}
        pfs_api = PfsApi(store)
        for name, (kind, request_type) in PFS_METHODS.items():
            self._add(f"/pfs_v2.API/{name}", kind, request_type, getattr(pfs_api, name))
        self._add(
            "/metadata.API/EditMetadata",
            _UNARY,
            metadata.EditMetadataRequest,
            MetadataApi(store).EditMetadata,
        )
        self._add("/versionpb_v2.API/GetVersion", _UNARY, Empty, VersionApi().GetVersion)

    def _check_token(self, method: str, ctx: grpc.ServicerContext) -> None:
        if self._token is None or method in UNAUTHENTICATED_METHODS:
            return
        tokens = [v for k, v in ctx.invocation_metadata() if k == "authn-token"]
        if not tokens:
            ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "no authentication token (try logging in)")
        if len(tokens) > 1 or not hmac.compare_digest(tokens[0].encode(), self._token.encode()):
            ctx.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "provided auth token is corrupted or has expired (try logging in again)",
            )

    def _add(self, method: str, kind: str, request_type, handler: Callable) -> None:
        def guarded(run: Callable, ctx: grpc.ServicerContext):
            self._check_token(method, ctx)
            try:
                return run()
            except StoreError as err:
                ctx.abort(getattr(grpc.StatusCode, err.code), err.message)

        if kind == _UNARY:

            def unary(req, ctx):
                return guarded(lambda: handler(req, ctx), ctx)

            self._routes[method] = grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=request_type.FromString, response_serializer=_serialize
            )
        elif kind == _SERVER_STREAM:

            def server_stream(req, ctx) -> Iterator:
                self._check_token(method, ctx)
                try:
                    yield from handler(req, ctx)
                except StoreError as err:
                    ctx.abort(getattr(grpc.StatusCode, err.code), err.message)

            self._routes[method] = grpc.unary_stream_rpc_method_handler(
                server_stream,
                request_deserializer=request_type.FromString,
                response_serializer=_serialize,
            )
        else:

            def client_stream(requests, ctx):
                return guarded(lambda: handler(requests, ctx), ctx)

            self._routes[method] = grpc.stream_unary_rpc_method_handler(
                client_stream,
                request_deserializer=decode_modify_file,
                response_serializer=_serialize,
            )

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        found = self._routes.get(details.method)
        if found is not None:
            return found
        method = details.method

        def unimplemented(requests, ctx):
            ctx.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{method} is not supported by the kfp-pachyderm local server (a development "
                "default, not pachd); use a real Pachyderm cluster for it",
            )

        return grpc.stream_stream_rpc_method_handler(unimplemented)


def _cannot_listen(host: str, port: int, option: str) -> UsageError:
    return UsageError(
        f"cannot listen on {host}:{port}: the port is in use or {host} is not an address of "
        f"this machine (choose another --{option}, or 0 for any free port)"
    )


class LocalPachyderm:
    """The local server over ``data_dir``; ``start()`` binds and returns the address.

    Args:
        data_dir: where SQLite metadata and blobs live; reopening it resumes every finished commit.
        port: gRPC port (0 picks a free one).
        host: interface to bind, loopback by default.
        token: when set, every RPC but GetVersion must carry it as ``authn-token``.
        s3_port: port of the S3 gateway; None runs none.
    """

    def __init__(
        self,
        data_dir: Path | str,
        port: int = 0,
        host: str = "127.0.0.1",
        token: str | None = None,
        s3_port: int | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.token = token
        self.s3_port = s3_port
        self.store: Store | None = None
        self.s3 = None
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        """``grpc://host:port`` as PACHD_ADDRESS and ``Client.from_pachd_address`` take it."""
        return f"grpc://{self.host}:{self.port}"

    def start(self) -> str:
        self.store = Store(self.data_dir)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="pachd-local"),
            handlers=[_Handlers(self.store, self.token)],
            options=[*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)],
        )
        try:
            bound = self._server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise _cannot_listen(self.host, self.port, "port")
        self.port = bound
        self._server.start()
        if self.s3_port is not None:
            from kfp_pachyderm.local.s3.gateway import S3Gateway

            self.s3 = S3Gateway(self.store, host=self.host, port=self.s3_port, token=self.token)
            try:
                self.s3_port = self.s3.start()
            except OSError:
                self._server.stop(None)
                raise _cannot_listen(self.host, self.s3_port, "s3-port") from None
        log.info("local Pachyderm server listening on %s (data in %s)", self.address, self.data_dir)
        return self.address

    @property
    def s3_endpoint(self) -> str | None:
        """``http://host:port`` of the S3 gateway, when one runs."""
        return None if self.s3 is None else f"http://{self.host}:{self.s3_port}"

    def stop(self, grace: float = 1.0) -> None:
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def wait(self) -> None:
        """Block until the server stops."""
        if self._server is not None:
            self._server.wait_for_termination()

    def __enter__(self) -> LocalPachyderm:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
