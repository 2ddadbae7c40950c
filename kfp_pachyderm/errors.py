"""Errors the library raises; each message names the bad value and what would be valid.

Two kinds, told apart by class, so a caller (and the command line's exit code) knows which
it met: a :class:`UsageError` is input refused before any side effect (exit code 2), an
:class:`OperationError` is something that started and failed: an API call, the disk, a job
(exit code 1).
"""

from __future__ import annotations


class KfpPachydermError(Exception):
    """Base class of every error the library raises on purpose."""


class UsageError(KfpPachydermError, ValueError):
    """Input refused before any side effect: a bad value, a missing setting, a name that
    does not exist; the message names the value and what would be valid."""


class OperationError(KfpPachydermError):
    """An operation that started and failed: a server that went away or refused a call,
    a job that failed, a disk that filled up."""


class InvalidReferenceError(UsageError):
    """A commit reference that cannot be parsed."""


class ConnectionSettingsError(UsageError):
    """No usable Pachyderm address or token could be found, or pachd refused the token."""


class UnreachableError(OperationError):
    """A server (pachd, its S3 gateway) that could not be reached or went away mid-call."""


class NotFoundError(UsageError, LookupError):
    """A repo, branch, commit or path that does not exist."""


class AlreadyExistsError(UsageError):
    """A repo, branch or object that was to be created and already exists."""


class RunFailed(OperationError):
    """A pipeline run that started and failed (exit code 1): the message is the failing
    step's own error."""


class RunCancelled(RunFailed):
    """A run stopped by SIGINT or SIGTERM (exit code 130); its open commits were finished."""
