"""What running a TFJob produced, the same shape whether it ran on Kubernetes or locally."""

from __future__ import annotations

from dataclasses import dataclass, field

SUCCEEDED, FAILED, TIMED_OUT, CANCELLED = "Succeeded", "Failed", "TimedOut", "Cancelled"


@dataclass
class Condition:
    """One TFJob status condition as the Training Operator reports it."""

    type: str
    status: str = "True"
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""


@dataclass
class TFJobOutcome:
    """The end of a TFJob run.

    Attributes:
        name: the TFJob's name.
        state: Succeeded, Failed, TimedOut or Cancelled.
        conditions: every condition seen, in order (Created, Running, Restarting, ...).
        master_logs: the logs of the master replica (chief, else worker 0).
        replica_logs: replica name (``worker-1``) to its logs, as forwarded.
        events: Kubernetes events of the job and its pods, one line each.
        adopted: True when an existing TFJob of the same name was adopted, not created.
        deleted: True when the TFJob was deleted at the end.
        reused: True when no TFJob ran: an earlier output from the same inputs and settings
            is the result.
    """

    name: str
    state: str
    conditions: list[Condition] = field(default_factory=list)
    master_logs: str = ""
    replica_logs: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    adopted: bool = False
    deleted: bool = False
    reused: bool = False

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED

    def failure_report(self) -> str:
        """What to print when the job did not succeed: conditions, events, master logs."""
        lines = [f"TFJob {self.name} ended {self.state}"]
        lines += [f"  condition {c.type}: {c.reason} {c.message}".rstrip() for c in self.conditions]
        lines += [f"  event {e}" for e in self.events]
        lines += ["--- master replica logs ---", self.master_logs.rstrip(), "---"]
        return "\n".join(lines)
