"""Turning pachd's gRPC errors into the library's errors, with what was being done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from kfp_pachyderm.errors import (
    AlreadyExistsError,
    ConnectionSettingsError,
    NotFoundError,
    UnreachableError,
    UsageError,
)

_INPUT_ERRORS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)


@contextmanager
def rpc_errors(doing: str) -> Iterator[None]:
    """Re-raise gRPC errors from pachd as library errors that say what was being done.

    NOT_FOUND becomes :class:`NotFoundError`, ALREADY_EXISTS :class:`AlreadyExistsError`,
    other refused input :class:`UsageError`, a rejected token
    :class:`ConnectionSettingsError`, an unreachable server :class:`UnreachableError`;
    anything else propagates unchanged.
    """
    try:
        yield
    except ConnectionError as err:
        raise UnreachableError(f"{doing}: cannot reach pachd: {err}") from err
    except grpc.RpcError as err:
        code, details = err.code(), err.details()
        if code == grpc.StatusCode.NOT_FOUND:
            raise NotFoundError(f"{doing}: {details}") from err
        if code == grpc.StatusCode.ALREADY_EXISTS:
            raise AlreadyExistsError(f"{doing}: {details}") from err
        if code in _INPUT_ERRORS:
            raise UsageError(f"{doing}: {details}") from err
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            raise ConnectionSettingsError(f"{doing}: pachd refused the token: {details}") from err
        if code == grpc.StatusCode.UNAVAILABLE:
            raise UnreachableError(f"{doing}: cannot reach pachd: {details}") from err
        raise
