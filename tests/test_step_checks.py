"""A step function is checked when it is declared (no return value, not a generator, no name
of its module it does not import inside its body), and its inputs are read-only when it runs:
a write into one fails the datum, naming the path, against the real local server."""

from __future__ import annotations

import dataclasses
import os
import stat
import zlib
from pathlib import Path

import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm import CommitRef, commit_data, inspect_commit, pfs_step, read_tree
from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.pfs.provenance import ProvenanceRecord
from kfp_pachyderm.steps.execute import DatumWork, run_datums
from kfp_pachyderm.steps.run import run_step
from kfp_pachyderm.steps.signature import StepDefinitionError

SEPARATOR = ","
THIS_FILE = Path(__file__).read_text().splitlines()


def line_of(text: str) -> int:
    """The line of this file that holds ``text`` (once)."""
    [number] = [i for i, line in enumerate(THIS_FILE, 1) if text in line and "line_of" not in line]
    return number


def _helper(text):
    return text.upper()


def _returns_rows(raw, out):
    rows = sorted(os.listdir(raw))
    return rows


def _annotated(raw, out) -> list[str]:
    pass


def _yields(raw, out):
    yield from sorted(os.listdir(raw))


async def _coroutine(raw, out):
    pass


def _uses_module_names(raw, out):
    from pathlib import Path

    (Path(out) / "x.txt").write_text(_helper(str(zlib.crc32(b"x"))))


def _default_from_module(raw, out, sep: str = SEPARATOR):
    pass


def _annotated_with_path(raw: Path, out: Path):
    pass


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            _returns_rows,
            f"_returns_rows returns a value (line {line_of('return rows')}: return rows): a "
            "step's result is the files it writes in out; write them there and return nothing",
        ),
        (
            _annotated,
            f"_annotated is annotated to return list[str] (line {line_of('def _annotated(')}): ",
        ),
        (
            _yields,
            f"_yields is a generator (line {line_of('yield from sorted(os')}: yield from "
            "sorted(os.listdir(raw))), so calling it would run nothing",
        ),
        (_coroutine, "_coroutine is defined with async def"),
        (
            _uses_module_names,
            "_uses_module_names uses _helper, zlib, which it does not define or import inside "
            "its body: the step's source runs on its own (as a KFP lightweight component), so "
            "move the import (or the helper) into the function",
        ),
        (_default_from_module, "_default_from_module's signature uses SEPARATOR (in a default"),
        (_annotated_with_path, "_annotated_with_path's signature uses Path (in a default"),
    ],
)
def test_a_step_that_returns_a_value_or_uses_its_modules_names_is_refused_when_declared(
    function, message: str
):
    with pytest.raises(StepDefinitionError) as caught:
        pfs_step(output_repo="checked", glob="/*")(function)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def _accepted(raw, out, repeat: int = 2) -> None:
    """Nested scopes with their own returns, comprehensions, a class, a global the body
    assigns, and imports: all inside the body, so the source runs on its own."""
    import json
    from pathlib import Path

    global _seen
    _seen = []

    def shout(text: str) -> str:
        return text.upper() * repeat

    class Line:
        prefix = "> "
        both = prefix * 2

        def render(self, text):
            return self.both + shout(text)

    def walk(path):
        yield from sorted(path.rglob("*"))

    files = [p for p in walk(Path(raw)) if p.is_file()]
    if not files:
        return
    by_name = {p.name: Line().render(p.read_text()) for p in files}
    _seen.extend(sorted(by_name))
    lengths = sorted(map(lambda text: len(text), by_name.values()))
    (Path(out) / f"{files[0].name}.json").write_text(json.dumps([by_name, lengths, _seen]))
    return None


def put(client: Client, tmp_path: Path, repo: str, files: dict[str, str]) -> CommitRef:
    """Commit exactly ``files`` (path -> text) as the new head of ``repo@master``."""
    source = tmp_path / f"src-{repo}-{os.urandom(4).hex()}"
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    return commit_data(client, str(source), CommitRef(repo, branch="master")).ref.with_path(None)


def run(client: Client, step, inputs: dict[str, CommitRef], parallelism: int = 1):
    definition = dataclasses.replace(step.definition, parallelism=parallelism)
    return run_step(client, definition, inputs, {}, ProvenanceRecord(), log_line=lambda _: None)


def test_nested_scopes_comprehensions_and_imports_inside_the_body_are_accepted_and_run(
    client: Client, tmp_path: Path
):
    step = pfs_step(output_repo="accepted", glob="/*")(_accepted)
    raw = put(client, tmp_path, "raw", {"a.txt": "hi", "b.txt": "yo"})
    result = run(client, step, {"raw": raw}, parallelism=2)
    dest = tmp_path / "accepted"
    read_tree(client, result.ref.with_path("/"), dest)
    assert (dest / "a.txt.json").read_text() == '[{"a.txt": "> > HIHI"}, [8], ["a.txt"]]'
    assert (dest / "b.txt.json").read_text() == '[{"b.txt": "> > YOYO"}, [8], ["b.txt"]]'


@pfs_step(output_repo="adds", glob="/*")
def adds_a_file(raw, out):
    """Writes beside its input file instead of under out."""
    from pathlib import Path

    for path in list(Path(raw).rglob("*.csv")):
        (path.parent / f"{path.stem}.clean.csv").write_text(path.read_text().lower())


@pfs_step(output_repo="rewrites", glob="/*")
def rewrites_in_place(raw, out):
    """Rewrites its input file with the same number of bytes, at once."""
    from pathlib import Path

    for path in Path(raw).rglob("a.csv"):
        path.write_text(path.read_text().upper())


@pfs_step(output_repo="removes", glob="/*")
def removes_a_file(raw, out):
    """Moves its input file away."""
    from pathlib import Path

    for path in Path(raw).rglob("a.csv"):
        path.rename(Path(out) / path.name)


@pfs_step(output_repo="refused", glob="/*")
def refused_by_the_os(raw, out):
    """What a write into the read-only input does to a step that does not run as root."""
    import errno
    import os
    from pathlib import Path

    if (Path(raw) / "a.csv").exists():
        target = str(Path(raw) / "a.csv.tmp")
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), target)


@pytest.mark.parametrize(
    ("step", "parallelism", "change"),
    [
        (adds_a_file, 1, "/a.clean.csv was added"),
        (adds_a_file, 2, "/a.clean.csv was added"),
        (rewrites_in_place, 1, "/a.csv was changed"),
        (removes_a_file, 1, "/a.csv was removed"),
        (refused_by_the_os, 1, "/a.csv.tmp"),
    ],
)
def test_a_write_into_an_input_fails_the_datum_naming_the_path(
    client: Client, tmp_path: Path, step, parallelism: int, change: str
):
    raw = put(client, tmp_path, "raw", {"a.csv": "id,Title\n1,One\n", "b.txt": "kept"})
    message = (
        f"datum raw:/a.csv failed: the step wrote into its input directory raw: {change} "
        "(inputs are read-only; write under out)"
    )
    with pytest.raises(KfpPachydermError) as caught:
        run(client, step, {"raw": raw}, parallelism)
    assert str(caught.value) == message
    failed = inspect_commit(client, CommitRef(step.definition.output_repo, branch="master"))
    assert message in failed.error
    listed = client.pfs.walk_file(
        file=CommitRef(failed.commit.repo.name, commit=failed.commit.id, path="/").pfs_file()
    )
    assert [f.file.path for f in listed if f.file_type == pfs.FileType.FILE] == []


def test_inputs_are_read_only_during_the_call_and_writable_again_after(tmp_path: Path):
    source = (
        "def modes(raw, out):\n"
        "    import os, stat\n"
        "    from pathlib import Path\n\n"
        "    seen = [stat.S_IMODE(os.lstat(p).st_mode) for p in (raw, f'{raw}/d', f'{raw}/d/f')]\n"
        "    (Path(out) / 'modes').write_text(' '.join(map(oct, seen)))\n"
    )
    raw, out = tmp_path / "raw", tmp_path / "out"
    (raw / "d").mkdir(parents=True)
    (raw / "d" / "f").write_text("data")
    out.mkdir()
    paths = (raw, raw / "d", raw / "d" / "f")
    before = [stat.S_IMODE(p.lstat().st_mode) for p in paths]
    run_datums(source, "modes", [DatumWork("raw:/", {"raw": str(raw)}, str(out), "out", {})])
    during = [int(mode, 8) for mode in (out / "modes").read_text().split()]
    assert during == [mode & ~0o222 for mode in before]
    assert [stat.S_IMODE(p.lstat().st_mode) for p in paths] == before
    assert all(mode & stat.S_IWUSR for mode in before)
