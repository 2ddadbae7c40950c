"""The one interface a TFJob run needs from whatever runs the replicas: the Kubernetes
launcher (:mod:`kfp_pachyderm.tfjob.launcher`) in a cluster, the local executor
(:mod:`kfp_pachyderm.tfjob.local`) everywhere else, chosen by :func:`select_runner`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from kfp_pachyderm.kfp.pod import in_kubernetes_pod
from kfp_pachyderm.tfjob.outcome import TFJobOutcome
from kfp_pachyderm.tfjob.spec import TFJobSpec


class TFJobRunner(Protocol):
    """Runs a TFJob to its end."""

    def prepare(self, spec: TFJobSpec) -> TFJobSpec:
        """``spec`` as this runner submits it (the launcher adds its pod as the owner)."""

    def handle_sigterm(self) -> AbstractContextManager[None]:
        """While entered, a SIGTERM cancels the job instead of killing the step outright."""

    def run(self, spec: TFJobSpec, timeout_s: float, delete_after: bool = True) -> TFJobOutcome:
        """Run the job until it ends or ``timeout_s`` passes; return what it did."""


def select_runner(choice: str, log_line: Callable[[str], None]) -> TFJobRunner:
    """The runner for ``choice`` (``kubernetes``, ``local``, or ``auto``: Kubernetes inside a
    pod, local processes elsewhere). Loading the Kubernetes configuration happens here, so no
    configuration fails before anything is written."""
    if choice == "local" or (choice == "auto" and not in_kubernetes_pod()):
        from kfp_pachyderm.tfjob.local import LocalTFJobExecutor

        return LocalTFJobExecutor(log_line=log_line)
    from kfp_pachyderm.tfjob.launcher import TFJobLauncher, kubernetes_clients

    return TFJobLauncher(*kubernetes_clients(), log=log_line)
