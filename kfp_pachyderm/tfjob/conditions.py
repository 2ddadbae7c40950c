"""Reading a TFJob's conditions as the launcher watches it: which are new, and whether the job
has ended.

The Training Operator appends conditions (Created, Running, Restarting, Succeeded, Failed) to the
TFJob's status; every one is read, not only the last, so that a Restarting between two watch
events is still logged and recorded in the outcome.
"""

from __future__ import annotations

from collections.abc import Callable

from kfp_pachyderm.tfjob.outcome import FAILED, SUCCEEDED, Condition, TFJobOutcome
from kfp_pachyderm.tfjob.spec import TFJobSpec


class ConditionObserver:
    """Reads every condition of each version of the TFJob; logs and records the new ones."""

    def __init__(self, spec: TFJobSpec, outcome: TFJobOutcome, log: Callable[[str], None]):
        self._spec = spec
        self._outcome = outcome
        self._log = log
        self._previous: set[tuple] = set()

    def observe(self, job: dict) -> str | None:
        """Record the job's new conditions; Failed or Succeeded when one of them is True."""
        conditions = (job.get("status") or {}).get("conditions") or []
        current = set()
        for c in conditions:
            key = (
                c.get("type"),
                c.get("status"),
                c.get("reason"),
                c.get("lastTransitionTime"),
                c.get("lastUpdateTime"),
            )
            current.add(key)
            if key in self._previous:
                continue
            condition = Condition(
                type=c.get("type", ""),
                status=c.get("status", ""),
                reason=c.get("reason", ""),
                message=c.get("message", ""),
                last_transition_time=c.get("lastTransitionTime", ""),
            )
            self._outcome.conditions.append(condition)
            self._announce(condition)
        self._previous = current
        true = {c.get("type") for c in conditions if c.get("status") == "True"}
        if FAILED in true:
            return FAILED
        if SUCCEEDED in true:
            return SUCCEEDED
        return None

    def _announce(self, condition: Condition) -> None:
        job = f"TFJob {self._spec.namespace}/{self._spec.name}"
        if condition.type == "Restarting" and condition.status == "True":
            self._log(f"{job} is Restarting replicas: {condition.reason}: {condition.message}")
            return
        self._log(
            f"{job}: {condition.type}={condition.status} {condition.reason}: {condition.message}"
        )

    def vanished(self) -> str:
        """The TFJob was deleted by someone else before it ended: a failure."""
        condition = Condition(
            type=FAILED, reason="TFJobDeleted", message="the TFJob was deleted before it ended"
        )
        self._outcome.conditions.append(condition)
        self._log(f"TFJob {self._spec.namespace}/{self._spec.name}: {condition.message}")
        return FAILED
