"""Output a person reads during ``run --local``: one line per step as it starts and ends (name,
status, duration) and one saying what it did (its result reused, how many datums ran and were
carried over, its output commit), while kfp.local's full output (executor inputs, every step's
own log, the library's INFO lines) goes to a file whose path is printed. ``--verbose`` streams
everything instead.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from kfp_pachyderm.kfp.outcome import StepOutcome, parse_outcome

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_ENDED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_OUTPUT = re.compile(r"^\s+Output: '?([^'\s]+)'?\s*$")


def plain(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


class StepReporter:
    """A text stream standing in for ``sys.stdout``: everything goes to ``log``; step starts,
    ends and outcomes are summarised on ``console``, and kept in ``outcomes`` in run order."""

    def __init__(self, log: TextIO, console: TextIO | None):
        self.log = log
        self.console = console
        self.outcomes: list[StepOutcome] = []
        self._started: dict[str, float] = {}
        self._running = ""
        self._outcome: StepOutcome | None = None
        self._last_ended = ""
        self._pending = ""

    def write(self, text: str) -> int:
        self.log.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._summarise(plain(line))
        return len(text)

    def _say(self, text: str) -> None:
        if self.console is None:  # verbose: everything is on the console already
            return
        self.console.write(text + "\n")
        self.console.flush()

    def _summarise(self, line: str) -> None:
        if started := _STARTED.search(line):
            self._running = started.group(1)
            self._outcome = None
            self._started[self._running] = time.monotonic()
            self._say(f"  {self._running}: started")
        elif outcome := parse_outcome(line):
            self._outcome = outcome
        elif ended := _ENDED.search(line):
            name, status = ended.groups()
            took = time.monotonic() - self._started.get(name, time.monotonic())
            self._say(f"  {name}: {status.lower()} in {took:.1f} s")
            self._last_ended = ""
            if status == "SUCCESS" and self._outcome is not None:
                self.outcomes.append(self._outcome)
                self._say(f"  {name}: {self._outcome.summary()}")
            elif status == "SUCCESS":
                self._last_ended = name
            self._outcome = None
        elif self._last_ended and (output := _OUTPUT.match(line)):
            self._say(f"  {self._last_ended}: output {output.group(1)}")
            self._last_ended = ""

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return self.console is None and self.log.isatty()


class PlainText:
    """A text stream that drops terminal colour codes on their way to ``target``."""

    def __init__(self, target: TextIO):
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(plain(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def step_lines(log_path: Path, verbose: bool) -> Iterator[StepReporter]:
    """While the block runs, summarise kfp.local's output per step and keep all of it, with
    the library's log records, in ``log_path``; yield the reporter, whose ``outcomes`` say
    what each step did. With ``verbose``, let it all through instead (in colour only on a
    terminal)."""
    console = sys.stdout
    if verbose:
        sys.stdout = StepReporter(console if console.isatty() else PlainText(console), None)
        try:
            yield sys.stdout
        finally:
            sys.stdout = console
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        print(f"full logs: {log_path}", flush=True)
        reporter = StepReporter(log, console)
        records = logging.StreamHandler(reporter)
        records.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(records)
        sys.stdout = reporter
        try:
            yield reporter
        finally:
            sys.stdout = console
            logging.getLogger().removeHandler(records)
