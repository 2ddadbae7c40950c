"""Progress of long transfers: a bar on a terminal, a log line every few seconds elsewhere
(pipeline pods, CI), so a 10 GiB commit never looks hung and never floods a log."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 5.0
BAR_INTERVAL_S = 0.1
BAR_WIDTH = 30


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Counts files and bytes of one transfer and reports them at a bounded rate.

    Args:
        label: what is being transferred, for example ``"commit images@master"``.
        total_bytes: the expected size, when known.
        stream: where a terminal bar goes; a non-terminal stream means log lines.
        clock: a monotonic clock (injected in tests).
    """

    def __init__(
        self,
        label: str,
        total_bytes: int | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label = label
        self.total_bytes = total_bytes
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.files = 0
        self.bytes = 0
        self.started = clock()
        self._last = self.started
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def add(self, nbytes: int, files: int = 0) -> None:
        """Count ``nbytes`` (and ``files`` completed) and report if it is time to."""
        self.bytes += nbytes
        self.files += files
        now = self.clock()
        if now - self._last >= (BAR_INTERVAL_S if self._tty else LOG_INTERVAL_S):
            self._last = now
            self._report(now, final=False)

    def done(self) -> None:
        """Report the final figures."""
        self._report(self.clock(), final=True)

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = human_bytes(self.bytes / elapsed)
        done = f"{self.files} files, {human_bytes(self.bytes)}"
        if self.total_bytes:
            pct = min(100.0, 100.0 * self.bytes / self.total_bytes)
            done += f" of {human_bytes(self.total_bytes)} ({pct:.0f}%)"
        return f"{self.label}: {done}, {rate}/s"

    def _report(self, now: float, final: bool) -> None:
        if self._tty:
            bar = ""
            if self.total_bytes:
                filled = int(BAR_WIDTH * min(1.0, self.bytes / self.total_bytes))
                bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "] "
            end = "\n" if final else ""
            self.stream.write(f"\r{bar}{self.line(now)}{end}")
            self.stream.flush()
        elif final or now - self.started >= LOG_INTERVAL_S:
            log.info(self.line(now))
