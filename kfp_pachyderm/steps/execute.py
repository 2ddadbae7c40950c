"""Running a step function once per datum, each in its own directories, serially or in a pool
of worker processes.

The function travels as source text (as KFP ships a lightweight component), so a worker
process defines it afresh from that text and never inherits the parent's gRPC channels. Each
datum sees only its own input files, at the paths they have in the commit (as under
Pachyderm's ``/pfs/<input>``), and writes into an empty output directory of its own.

Inputs are read-only (:mod:`kfp_pachyderm.steps.readonly`): a write into one would be lost,
so it fails the datum, naming the path.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from kfp_pachyderm.errors import OperationError
from kfp_pachyderm.steps.readonly import ReadOnlyInputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatumWork:
    """One datum's call: its directories and the parameters."""

    datum_id: str
    inputs: dict[str, str]
    output: str
    output_name: str
    parameters: dict[str, Any]
    tries: int = 1


def compile_step(source: str, name: str) -> CodeType:
    """The step function's source compiled as :func:`define` runs it (and as
    :mod:`kfp_pachyderm.steps.checks` reads it): on its own, inheriting no ``__future__``
    import of the module the function came from."""
    return compile(source, f"<step {name}>", "exec", dont_inherit=True)


def define(source: str, name: str) -> Callable:
    """The function ``name`` defined by ``source`` in a fresh namespace, as KFP runs a
    lightweight component's source."""
    namespace: dict[str, Any] = {"__name__": f"kfp_pachyderm_step_{name}"}
    exec(compile_step(source, name), namespace)
    return namespace[name]


def _call(function: Callable, work: DatumWork) -> float:
    """Call the function on one datum with its inputs read-only and return how long it took,
    in seconds; a write into an input, or an exception, fails the datum with one line naming
    it."""
    roots = {name: Path(path) for name, path in work.inputs.items()}
    failure: Exception | None = None
    with ReadOnlyInputs(roots) as guard:
        started = time.perf_counter()
        try:
            function(**work.inputs, **{work.output_name: work.output}, **work.parameters)
        except Exception as err:
            failure = err
        seconds = time.perf_counter() - started
    wrote = guard.first_write(failure)
    if wrote:
        raise OperationError(
            f"datum {work.datum_id} failed: the step wrote into its input directory {wrote} "
            f"(inputs are read-only; write under {work.output_name})"
        ) from failure
    if failure is not None:
        raise DatumFunctionFailed(
            f"datum {work.datum_id} failed: {type(failure).__name__}: {failure}"
        ) from failure
    return seconds


class DatumFunctionFailed(OperationError):
    """The step function raised on a datum (which a retry may get past, unlike a write into
    an input)."""


def _call_with_tries(function: Callable, work: DatumWork) -> float:
    """:func:`_call`, tried ``work.tries`` times while the function raises (as Pachyderm's
    ``datum_tries``), each try in an emptied output directory; the last failure names how
    many tries it took."""
    attempt = 1
    while True:
        try:
            return _call(function, work)
        except DatumFunctionFailed as failed:
            if attempt >= work.tries:
                if work.tries == 1:
                    raise
                raise DatumFunctionFailed(f"{failed} (after {work.tries} tries)") from failed
            attempt += 1
            log.warning("%s; trying again (%d of %d)", failed, attempt, work.tries)
            shutil.rmtree(work.output)
            Path(work.output).mkdir(parents=True)


_WORKER_FUNCTION: Callable | None = None


def _init_worker(source: str, name: str) -> None:
    global _WORKER_FUNCTION
    _WORKER_FUNCTION = define(source, name)


def _run_in_worker(work: DatumWork) -> float:
    return _call_with_tries(_WORKER_FUNCTION, work)


def run_datums(
    source: str, name: str, works: list[DatumWork], parallelism: int = 1
) -> dict[str, float]:
    """Call the function on every datum; with ``parallelism`` > 1 in that many worker
    processes. Return each datum's time in seconds, by ID; raise on the first datum that
    fails, naming it."""
    if parallelism <= 1 or len(works) <= 1:
        function = define(source, name)
        return {work.datum_id: _call_with_tries(function, work) for work in works}
    context = multiprocessing.get_context("spawn")
    workers = min(parallelism, len(works), os.cpu_count() or 1) or 1
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(source, name)
    ) as pool:
        return dict(zip((w.datum_id for w in works), pool.map(_run_in_worker, works), strict=True))


def written_files(output: Path) -> list[str]:
    """The files a datum wrote, as commit paths (``/a/b.txt``), in path order."""
    found = []
    for root, dirs, files in os.walk(output):
        dirs.sort()
        for file in sorted(files):
            found.append("/" + (Path(root) / file).relative_to(output).as_posix())
    return sorted(found)
