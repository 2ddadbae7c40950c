"""Errors the library raises; each message names the bad value and what would be valid."""

from __future__ import annotations


class KfpPachydermError(Exception):
    """Base class: a problem with the caller's input or environment, found before side effects."""


class InvalidReferenceError(KfpPachydermError, ValueError):
    """A commit reference that cannot be parsed."""


class ConnectionSettingsError(KfpPachydermError):
    """No usable Pachyderm address or token could be found or reached."""


class NotFoundError(KfpPachydermError, LookupError):
    """A repo, branch, commit or path that does not exist."""


class RunFailed(Exception):
    """A pipeline run that started and failed (exit code 1): the message is the failing
    step's own error."""


class RunCancelled(RunFailed):
    """A run stopped by SIGINT or SIGTERM (exit code 130); its open commits were finished."""
