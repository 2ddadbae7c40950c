"""Running a TFJob with no cluster: each replica a local process with the ``TF_CONFIG`` the
Training Operator would give it (real multi-worker TensorFlow over loopback ports).

It behaves like the cluster launcher where a user can tell: the same :class:`TFJobOutcome`,
conditions (Created, Running, Restarting, Succeeded/Failed), replica logs forwarded with their
replica name, a timeout that stops every replica, and nothing left running afterwards. The
image is not used: replicas run in this Python environment (``python`` in the command means
this interpreter).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.tfjob.outcome import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    TIMED_OUT,
    Condition,
    TFJobOutcome,
)
from kfp_pachyderm.tfjob.spec import TFJobSpec

log = logging.getLogger(__name__)

CLUSTER_TYPES = ("Chief", "Worker", "PS")
DEFAULT_BACKOFF_LIMIT = 3
STOP_GRACE_S = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class _Replica:
    type: str
    index: int
    command: list[str]
    env: dict[str, str]
    restart_policy: str
    process: subprocess.Popen | None = None
    restarts: int = 0
    output: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.type.lower()}-{self.index}"


def tf_config(spec: TFJobSpec, ports: dict[tuple[str, int], int], task: tuple[str, int]) -> str:
    """The TF_CONFIG of one replica, as the Training Operator writes it."""
    cluster = {
        t.lower(): [f"127.0.0.1:{ports[(t, i)]}" for i in range(spec.replicas[t].replicas)]
        for t in CLUSTER_TYPES
        if t in spec.replicas
    }
    config = {"cluster": cluster, "task": {"type": task[0].lower(), "index": task[1]}}
    return json.dumps({**config, "environment": "cloud"})


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal a replica's process group; one that has just exited (and been reaped by its
    output pump) is already stopped."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


class LocalTFJobExecutor:
    """Runs :class:`TFJobSpec` replicas as processes; see the module docstring.

    Args:
        clock: a monotonic clock (injected in tests).
        log_line: where forwarded replica output goes (the step's log).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        log_line: Callable[[str], None] = print,
    ):
        self.clock = clock
        self.log_line = log_line
        self._replicas: list[_Replica] = []
        self._exits: queue.Queue[tuple[_Replica, int] | None] = queue.Queue()
        self._cancelled = threading.Event()

    def _replicas_for(self, spec: TFJobSpec) -> list[_Replica]:
        ports = {
            (t, i): _free_port()
            for t in CLUSTER_TYPES
            if t in spec.replicas
            for i in range(spec.replicas[t].replicas)
        }
        replicas = []
        for replica_type, replica in spec.replicas.items():
            command = [*replica.command, *replica.args]
            if not command:
                raise UsageError(f"{replica_type} replicas need a command to run locally")
            if command[0] in ("python", "python3"):
                command[0] = sys.executable
            for index in range(replica.replicas):
                env = {**os.environ, **spec.env, **replica.env}
                env["TF_CONFIG"] = tf_config(spec, ports, (replica_type, index))
                replicas.append(_Replica(replica_type, index, command, env, replica.restart_policy))
        return replicas

    def _start(self, replica: _Replica) -> None:
        replica.process = subprocess.Popen(
            replica.command,
            env=replica.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, args=(replica, replica.process), daemon=True).start()

    def _pump(self, replica: _Replica, process: subprocess.Popen) -> None:
        for line in process.stdout:
            replica.output.append(line)
            self.log_line(f"[{replica.name}] {line.rstrip()}")
        self._exits.put((replica, process.wait()))

    def prepare(self, spec: TFJobSpec) -> TFJobSpec:
        """``spec`` unchanged: local replicas have no owner to point at."""
        return spec

    @contextmanager
    def handle_sigterm(self) -> Iterator[None]:
        """While entered, SIGTERM cancels the job (every replica stops) instead of killing
        this process with the replicas still running."""
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda *_: self.cancel())
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def cancel(self) -> None:
        """Stop every replica (a cancelled KFP run); ``run`` returns Cancelled."""
        self._cancelled.set()
        self._exits.put(None)

    def _stop_all(self) -> None:
        for replica in self._replicas:
            if replica.process and replica.process.poll() is None:
                _signal_group(replica.process, signal.SIGTERM)
        deadline = self.clock() + STOP_GRACE_S
        for replica in self._replicas:
            if replica.process is None:
                continue
            try:
                replica.process.wait(timeout=max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                _signal_group(replica.process, signal.SIGKILL)
                replica.process.wait()

    def run(self, spec: TFJobSpec, timeout_s: float, delete_after: bool = True) -> TFJobOutcome:
        """Run the job to its end; every replica process is gone when this returns."""
        outcome = TFJobOutcome(name=spec.name, state=FAILED)

        def condition(kind: str, reason: str, message: str) -> None:
            now = datetime.now(UTC).isoformat()
            outcome.conditions.append(Condition(kind, "True", reason, message, now))
            self.log_line(f"TFJob {spec.name}: {kind} ({reason}) {message}".rstrip())

        self._replicas = self._replicas_for(spec)
        master = next(r for r in self._replicas if r.type == spec.master_type and r.index == 0)
        backoff = DEFAULT_BACKOFF_LIMIT if spec.backoff_limit is None else spec.backoff_limit
        restarts = 0
        deadline = self.clock() + timeout_s
        condition("Created", "TFJobCreated", f"{len(self._replicas)} local replicas")
        try:
            for replica in self._replicas:
                self._start(replica)
                outcome.events.append(f"started {replica.name} (pid {replica.process.pid})")
            condition("Running", "TFJobRunning", "all replicas started")
            while True:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    condition("Failed", "TimedOut", f"no result within {timeout_s:g} s")
                    outcome.state = TIMED_OUT
                    break
                try:
                    item = self._exits.get(timeout=remaining)
                except queue.Empty:
                    continue
                if item is None or self._cancelled.is_set():
                    condition("Failed", "Cancelled", "the run was cancelled")
                    outcome.state = CANCELLED
                    break
                replica, code = item
                outcome.events.append(f"{replica.name} exited with code {code}")
                if replica.type in ("PS", "Evaluator"):
                    continue
                if code == 0:
                    if replica is master:
                        condition("Succeeded", "TFJobSucceeded", f"{master.name} completed")
                        outcome.state = SUCCEEDED
                        break
                    continue
                if replica.restart_policy in ("OnFailure", "Always") and restarts < backoff:
                    restarts += 1
                    replica.restarts += 1
                    condition("Restarting", "TFJobRestarting", f"{replica.name} exited {code}")
                    self._start(replica)
                    continue
                condition("Failed", "TFJobFailed", f"{replica.name} exited with code {code}")
                outcome.state = FAILED
                break
        finally:
            self._stop_all()
        outcome.replica_logs = {r.name: "".join(r.output) for r in self._replicas}
        outcome.master_logs = outcome.replica_logs[master.name]
        outcome.deleted = True
        return outcome
