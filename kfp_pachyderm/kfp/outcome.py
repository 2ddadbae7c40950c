"""The one line a component prints about its output commit, and its reading back.

Every component names its output commit through :func:`~kfp_pachyderm.kfp.artifacts.
describe_commit`, which prints this line into the step's log. ``kfp-pachyderm run`` reads it
from kfp.local's output to say on the console what each step did: its result was reused
whole, or some datums ran and the others were carried over, or it wrote a new commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PREFIX = "kfp-pachyderm output: "
_FIELDS = ("reused", "datums_ran", "datums_carried")


@dataclass(frozen=True)
class StepOutcome:
    """What a step did: its output commit's URI, and whether it was reused or how many
    datums ran and were carried over (None where the step does not count datums)."""

    uri: str
    reused: bool = False
    ran: int | None = None
    carried: int | None = None

    def summary(self) -> str:
        """One phrase for the console: ``reused <uri>``, ``12 datums ran, 988 carried over``,
        or ``output <uri>``."""
        if self.reused:
            return f"reused {self.uri}"
        if self.ran is not None:
            carried = f", {self.carried} carried over" if self.carried is not None else ""
            return f"{_datums(self.ran)} ran{carried}; output {self.uri}"
        return f"output {self.uri}"


def _datums(count: int) -> str:
    return f"{count} datum" if count == 1 else f"{count} datums"


def outcome_line(uri: str, measured: dict[str, Any]) -> str:
    """The line for an output commit at ``uri`` with what the step ``measured``."""
    fields = {key: measured[key] for key in _FIELDS if key in measured}
    return PREFIX + json.dumps({"uri": uri, **fields}, sort_keys=True)


def parse_outcome(line: str) -> StepOutcome | None:
    """The outcome a log line holds, or None for any other line."""
    _, found, text = line.partition(PREFIX)
    if not found:
        return None
    try:
        fields = json.loads(text)
        return StepOutcome(
            uri=str(fields["uri"]),
            reused=bool(fields.get("reused", False)),
            ran=None if fields.get("datums_ran") is None else int(fields["datums_ran"]),
            carried=None if fields.get("datums_carried") is None else int(fields["datums_carried"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
