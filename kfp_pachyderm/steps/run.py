"""Running a step on pinned input commits and leaving its result in one output commit.

Order of work, so that a failure leaves nothing half-made and a rerun does only what changed:

1. Pin every input to a commit (an errored or unknown commit fails here, before any write).
2. Reuse: when the output branch's head was made by the same code, image and parameters from
   exactly these input commits, it is the result; nothing runs.
3. Match the datums. When the head was made by the same code, image and parameters from
   earlier commits (and the step is incremental), datums whose hash it recorded keep their
   outputs: the new output commit inherits the head's files (Pachyderm shares their content,
   no bytes move), the outputs of changed and removed datums are deleted, and only new and
   changed datums run.
4. Open the output commit (with ``native``, the one Pachyderm opened for these inputs on an
   output branch with branch provenance: :mod:`kfp_pachyderm.pfs.native`; else a new one), run
   the datums (each in its own directories), check that no two datums wrote the same path,
   delete the outputs of changed and removed datums, upload the new outputs in one stream,
   record provenance and the datum index, finish. If anything raises, the commit is finished
   with the error and holds nothing the failed run wrote.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm.errors import OperationError
from kfp_pachyderm.pfs.commits import (
    clear_output_branch,
    finished_head,
    inspect_commit,
    output_branch_without_provenance,
    output_commit,
    resolve_input,
    reusable_result,
)
from kfp_pachyderm.pfs.native import RECORD_KEY as NATIVE_KEY
from kfp_pachyderm.pfs.native import prepare_native_output
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, edit_metadata, record_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.rpc import rpc_errors
from kfp_pachyderm.pfs.transfer import local_files, put_files, read_tree
from kfp_pachyderm.steps.datums import (
    INDEX_KEY,
    Datum,
    DatumOutputs,
    datums_of,
    decode_index,
    encode_index,
    matched_entries,
)
from kfp_pachyderm.steps.definition import StepDefinition
from kfp_pachyderm.steps.execute import DatumWork, run_datums, written_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    """The output commit, and which datums ran, were carried over, or were reused whole."""

    ref: CommitRef
    ran: tuple[str, ...]
    carried: tuple[str, ...]
    reused: bool


def _previous_index(
    client: Client, previous: CommitRef, record: ProvenanceRecord
) -> tuple[CommitRef, dict[str, DatumOutputs]] | None:
    """The previous output (the output branch's head, or the commit ``previous`` names) and
    its datum index, when the same code, image and parameters made it (from any inputs)."""
    head = finished_head(client, previous)
    if head is None:
        return None
    ref, done = head
    same = (done.step, done.code, done.image, done.parameters) == (
        record.step,
        record.code,
        record.image,
        record.parameters,
    )
    if not same:
        return None
    index = decode_index(dict(inspect_commit(client, ref).metadata or {}).get(INDEX_KEY))
    return (ref, index) if index is not None else None


def _fetch(client: Client, datum: Datum, inputs: dict[str, CommitRef], root: Path) -> None:
    for entry in datum.entries:
        base = root / entry.input
        where = base / entry.path.lstrip("/")
        dest = where.parent if entry.is_file else where
        dest.mkdir(parents=True, exist_ok=True)
        read_tree(client, inputs[entry.input].with_path(entry.path), dest, digest=False)


def _check_disjoint(outputs: dict[str, tuple[str, ...]]) -> None:
    owner: dict[str, str] = {}
    for datum_id, files in outputs.items():
        for path in files:
            if path in owner:
                raise OperationError(
                    f"datums {owner[path]!r} and {datum_id!r} both wrote {path}: each output "
                    "path must come from one datum (write under a name derived from the datum)"
                )
            owner[path] = datum_id


def _check_metrics_written(
    step: StepDefinition, carried: list[DatumOutputs], new: dict[str, tuple[str, ...]]
) -> None:
    """A step that declares a metrics file must write it (before its commit is finished, so
    that a rerun does not reuse a result without it)."""
    if not step.metrics:
        return
    written = {path for outputs in carried for path in outputs.files}
    written |= {path for files in new.values() for path in files}
    if "/" + step.metrics not in written:
        raise OperationError(
            f"{step.name} declares its metrics in {step.metrics}, but no datum wrote it"
        )


def _drop(client: Client, out: pfs.Commit, files: list[str]) -> None:
    """Delete the inherited outputs of datums that changed or went away."""
    if not files:
        return
    requests = [pfs.ModifyFileRequest(set_commit=out)]
    requests += [pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path)) for path in files]
    with rpc_errors(f"dropping {len(files)} outputs of changed or removed datums"):
        client.pfs.modify_file(iter(requests))


def run_step(
    client: Client,
    step: StepDefinition,
    inputs: dict[str, CommitRef],
    parameters: dict,
    record: ProvenanceRecord,
    log_line: Callable[[str], None] = print,
    native: bool = False,
) -> StepResult:
    """Run ``step`` on ``inputs`` (see the module docstring); return the finished output.
    With ``native``, the output gets Pachyderm-native provenance where it can
    (:mod:`kfp_pachyderm.pfs.native`); the record says whether it did."""
    pinned = {name: resolve_input(client, inputs[name]) for name in step.inputs}
    target = CommitRef(step.output_repo, branch=step.output_branch).branch_ref()
    record.step = step.name
    record.inputs = [str(pinned[name]) for name in step.inputs]
    record.code = step.code_digest
    record.parameters = {k: json.dumps(v, sort_keys=True) for k, v in sorted(parameters.items())}
    clear_output_branch(client, target, record)  # another run of this step writes first
    reused = reusable_result(client, target, record)
    if reused is not None:
        log_line(f"{reused} was made by {step.name} from these inputs; reusing it")
        return StepResult(reused, (), (), True)
    opened = None
    if native:
        opened = prepare_native_output(client, target, [pinned[n] for n in step.inputs])
        record.extra = {**record.extra, NATIVE_KEY: opened.note}
        log_line(f"{step.name}: {opened.note}")
    else:
        output_branch_without_provenance(client, target)

    per_input = [
        matched_entries(client, name, pinned[name], step.glob_of(name)) for name in step.inputs
    ]
    datums = datums_of(per_input)
    if not datums:
        empty = [n for n, e in zip(step.inputs, per_input, strict=True) if not e]
        log_line(
            f"the glob of {', '.join(empty)} matched nothing in "
            f"{', '.join(str(pinned[n]) for n in empty)}: the output commit is empty"
        )
    with (
        output_commit(
            client, target, same_id_as=opened.commit if opened else None, provenance=record
        ) as out,
        tempfile.TemporaryDirectory(prefix=f"kfp-pachyderm-{step.name}-") as work_dir,
    ):
        # What to carry over is read from the parent the commit really has: another run may
        # have written the branch between the reuse check and the commit's start.
        parent = inspect_commit(client, out.ref).parent_commit
        before = target.at(parent.id) if parent is not None and parent.id else None
        previous = _previous_index(client, before, record) if step.incremental and before else None
        if previous is None:
            with rpc_errors(f"clearing {out.ref}"):
                client.pfs.delete_file(commit=out.pfs_commit(), path="/")
        earlier = previous[1] if previous else {}
        carried = {
            d.id: replace(earlier[d.id], ran=False)
            for d in datums
            if d.id in earlier and earlier[d.id].hash == d.hash
        }
        to_run = [d for d in datums if d.id not in carried]
        works = []
        for number, datum in enumerate(to_run):
            root = Path(work_dir) / f"datum-{number}"
            _fetch(client, datum, pinned, root / "in")
            (root / "out").mkdir(parents=True)
            dirs = {name: str(root / "in" / name) for name in step.inputs}
            for path in dirs.values():
                Path(path).mkdir(parents=True, exist_ok=True)
            works.append(
                DatumWork(
                    datum.id, dirs, str(root / "out"), step.output, parameters, step.datum_tries
                )
            )
        seconds = run_datums(step.source, step.name, works, step.parallelism)
        new_outputs = {w.datum_id: tuple(written_files(Path(w.output))) for w in works}
        _check_disjoint({**{k: v.files for k, v in carried.items()}, **new_outputs})
        _check_metrics_written(step, [*carried.values()], new_outputs)
        _drop(
            client,
            out.pfs_commit(),
            [p for k, v in earlier.items() if k not in carried for p in v.files],
        )
        uploads = [f for w in works for f in local_files(Path(w.output))]
        put_files(client, out.pfs_commit(), uploads, "/")
        hashes = {d.id: d.hash for d in to_run}
        ran = {
            k: DatumOutputs(hashes[k], v, True, round(seconds[k], 6))
            for k, v in new_outputs.items()
        }
        index = {**carried, **ran}
        edit_metadata(client, out.ref, {INDEX_KEY: encode_index(index)})
        record.extra = {
            **record.extra,
            "datums_ran": str(len(to_run)),
            "datums_carried": str(len(carried)),
        }
        record_provenance(client, out.ref, record)
    log_line(
        f"{step.name}: {len(to_run)} datum(s) ran, {len(carried)} carried over unchanged; "
        f"output {out.ref}"
    )
    return StepResult(out.ref, tuple(w.datum_id for w in works), tuple(carried), False)
