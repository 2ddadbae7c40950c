"""Moving file bytes between the disk and the wire while hashing them, in small slices.

On two cores a transfer's client is CPU-bound, and ``perf`` on a 1 GiB read-back showed where:
a hash of every byte, and the kernel's copy of 4 MiB message bodies into the page cache, which
took a quarter of the reader's CPU, and in some runs twenty times as long as in others. The cost
is the first touch of freshly allocated page-cache memory: on this VM (Firecracker,
virtio-balloon with free page reporting) memory freed for a few seconds most likely goes back to
the host, and a large write gets large folios carved from exactly such memory. Writing 1 GiB
five seconds after freeing 1 GiB took 2.3 to 2.4 s of system time in 4 MiB writes, 0.7 to 1.4 s
in 256 KiB writes and 0.3 to 0.7 s in 16 to 128 KiB writes (0.25 s in 256 KiB or 4 MiB writes
without the wait). Every write here goes out in :data:`SLICE_BYTES` slices, each hashed just
before (so it is still in the CPU cache), and files are read the same way (:func:`read_hashed`).
:class:`BackgroundWriter` writes on a thread of its own while the receiving thread hashes and
receives the next message (hashing and file writes release the GIL on large buffers).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

SLICE_BYTES = 64 << 10
QUEUE_PIECES = 4


def hash_and_write(out: BinaryIO, content: Any, piece: memoryview | bytes) -> None:
    """Add ``piece`` to the hash ``content`` and write it all to the unbuffered ``out``, one
    cache-sized slice at a time."""
    view = memoryview(piece)
    for start in range(0, len(view), SLICE_BYTES):
        part = view[start : start + SLICE_BYTES]
        content.update(part)
        _write_all(out, part)


def write_slices(out: BinaryIO, piece: memoryview | bytes) -> None:
    """Write ``piece`` all to the unbuffered ``out`` in cache-sized slices."""
    view = memoryview(piece)
    for start in range(0, len(view), SLICE_BYTES):
        _write_all(out, view[start : start + SLICE_BYTES])


def _write_all(out: BinaryIO, part: memoryview) -> None:
    while part:
        part = part[out.write(part) :]


def read_hashed(
    path: Path, content: Any, buffer: memoryview, reserve: int = 0
) -> Iterator[tuple[memoryview, int]]:
    """Read the file at ``path`` into ``buffer`` after its first ``reserve`` bytes (room for a
    message header), hashing each cache-sized slice into ``content`` as it arrives; yield
    (``buffer``, bytes read) per filling. The buffer is reused: use each before the next."""
    chunk = len(buffer) - reserve
    with open(path, "rb", buffering=0) as f:
        while True:
            filled = 0
            while filled < chunk:
                part = buffer[reserve + filled : reserve + min(chunk, filled + SLICE_BYTES)]
                got = f.readinto(part)
                if not got:
                    break
                content.update(part[:got])
                filled += got
            if filled:
                yield buffer, filled
            if filled < chunk:
                return


class BackgroundWriter:
    """Writes file pieces on a thread of its own, in the order given.

    At most :data:`QUEUE_PIECES` pieces wait, which bounds the memory a fast sender can fill.
    After a failure the thread keeps closing files but writes nothing more; the failure is
    raised by the next :meth:`write` and by :meth:`finish`.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(QUEUE_PIECES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pfs-disk-writer", daemon=True)
        self._thread.start()

    def write(self, out: BinaryIO, piece: memoryview | bytes) -> None:
        """Queue ``piece`` to be written to the unbuffered ``out``."""
        if self._error is not None:
            raise self._error
        self._queue.put((out, piece))

    def close(self, out: BinaryIO) -> None:
        """Queue closing ``out`` after its pieces."""
        self._queue.put((out, None))

    def finish(self, raise_error: bool = True) -> None:
        """Wait until everything queued is written and closed; raise the first failure unless
        ``raise_error`` is false (the caller is already raising)."""
        self._queue.put(None)
        self._thread.join()
        if raise_error and self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            out, piece = item
            try:
                if piece is None:
                    out.close()
                elif self._error is None:
                    write_slices(out, piece)
            except BaseException as err:  # raised on the caller's thread
                self._error = self._error or err
