"""Your own steps: plain functions over directories as Pachyderm-native KFP components, with
datums, reuse and incremental processing, against the real local server and kfp.local."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
from kfp import compiler, components, dsl
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from kfp_pachyderm import (
    CommitRef,
    commit_data,
    inspect_commit,
    pfs_step,
    read_tree,
)
from kfp_pachyderm.errors import KfpPachydermError, OperationError
from kfp_pachyderm.pfs.provenance import ProvenanceRecord, read_provenance
from kfp_pachyderm.steps.run import run_step
from kfp_pachyderm.steps.signature import StepDefinitionError


@pfs_step(output_repo="shouted", glob="/*")
def shout(raw, out, suffix: str = "!"):
    """Upper-case every file of the datum, keeping its path."""
    from pathlib import Path

    for path in sorted(Path(raw).rglob("*")):
        if path.is_file():
            target = Path(out) / path.relative_to(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text().upper() + suffix)


@pfs_step(output_repo="pairs", glob={"left": "/*", "right": "/"})
def pair(left, right, out):
    """Each file of ``left`` next to the names of every file of ``right``."""
    from pathlib import Path

    names = sorted(p.name for p in Path(right).rglob("*") if p.is_file())
    for path in Path(left).rglob("*"):
        if path.is_file():
            (Path(out) / f"{path.name}.pairs").write_text(",".join(names))


@pfs_step(output_repo="clash", glob="/*")
def clash(raw, out):
    """Every datum writes the same path."""
    from pathlib import Path

    (Path(out) / "summary.txt").write_text("same name")


@pfs_step(output_repo="fragile", glob="/*")
def fragile(raw, out):
    """Fails on the datum holding ``bad.txt``."""
    from pathlib import Path

    for path in Path(raw).rglob("*"):
        (Path(out) / path.name).write_text("ok")
        if path.name == "bad.txt":
            raise ValueError("this datum is bad on purpose")


def put(client: Client, tmp_path: Path, repo: str, files: dict[str, str]) -> CommitRef:
    """Commit exactly ``files`` (path -> text) as the new head of ``repo@master``."""
    source = tmp_path / f"src-{repo}-{os.urandom(4).hex()}"
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    source.mkdir(exist_ok=True)
    ref = CommitRef(repo, branch="master")
    return commit_data(client, str(source), ref, mirror=True).ref.with_path(None)


def contents(client: Client, ref: CommitRef, tmp_path: Path) -> dict[str, bytes]:
    dest = tmp_path / f"read-{os.urandom(4).hex()}"
    read_tree(client, ref.with_path("/"), dest)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def run(client: Client, step, inputs: dict[str, CommitRef], **overrides):
    definition = dataclasses.replace(step.definition, **overrides)
    return run_step(client, definition, inputs, {}, ProvenanceRecord(), log_line=lambda _: None)


@pytest.mark.slow
def test_a_step_runs_under_kfp_local_and_records_its_provenance(kfp_local: Client, tmp_path):
    raw = put(kfp_local, tmp_path, "raw", {"a.txt": "hello", "b/c.txt": "world"})
    task = shout(raw=str(raw), suffix="?")
    commit = task.outputs["commit"]
    out = CommitRef("shouted", commit=task.outputs["Output"])
    assert commit.metadata["commit"] == out.commit
    assert contents(kfp_local, out, tmp_path) == {"a.txt": b"HELLO?", "b/c.txt": b"WORLD?"}
    record = read_provenance(inspect_commit(kfp_local, out))
    assert record.step == "shout"
    assert record.inputs == [str(raw)]
    assert record.parameters == {"suffix": '"?"'}
    assert record.code.startswith("sha256:")


@pytest.mark.slow
def test_a_pipeline_passes_an_earlier_steps_artifact_as_an_input(kfp_local: Client, tmp_path):
    put(kfp_local, tmp_path, "raw", {"a.txt": "x"})

    @dsl.pipeline
    def two_steps():
        shouted = shout(raw="raw@master")
        pair(left=shouted.outputs["commit"], right="raw@master")

    two_steps()
    out = CommitRef("pairs", branch="master")
    assert contents(kfp_local, out, tmp_path) == {"a.txt.pairs": b"a.txt"}
    record = read_provenance(inspect_commit(kfp_local, out))
    shouted = CommitRef.parse(record.inputs[0])
    assert shouted.repo == "shouted"
    assert contents(kfp_local, shouted, tmp_path) == {"a.txt": b"X!"}


def test_several_inputs_cross_their_datums(client: Client, tmp_path: Path):
    left = put(client, tmp_path, "left", {"x.txt": "1", "y.txt": "2"})
    right = put(client, tmp_path, "right", {"p.txt": "3", "q/r.txt": "4"})
    result = run(client, pair, {"left": left, "right": right})
    assert sorted(result.ran) == ["left:/x.txt right:/", "left:/y.txt right:/"]
    assert contents(client, result.ref, tmp_path) == {
        "x.txt.pairs": b"p.txt,r.txt",
        "y.txt.pairs": b"p.txt,r.txt",
    }
    assert read_provenance(inspect_commit(client, result.ref)).inputs == [str(left), str(right)]


def test_reuse_returns_the_earlier_commit_without_running(client: Client, tmp_path: Path):
    raw = put(client, tmp_path, "raw", {"a.txt": "a", "b.txt": "b"})
    first = run(client, shout, {"raw": raw})
    second = run(client, shout, {"raw": raw})
    assert second.reused and second.ran == ()
    assert second.ref == first.ref


def test_incremental_runs_only_changed_datums_and_equals_a_full_rerun(
    client: Client, tmp_path: Path
):
    files = {f"d{i}/part.txt": f"datum {i}" for i in range(6)}
    run(client, shout, {"raw": put(client, tmp_path, "raw", files)})
    files["d1/part.txt"] = "modified"
    files["d6/part.txt"] = "added"
    del files["d2/part.txt"]
    changed = put(client, tmp_path, "raw", files)

    incremental = run(client, shout, {"raw": changed})
    assert sorted(incremental.ran) == ["raw:/d1/", "raw:/d6/"]
    assert sorted(incremental.carried) == ["raw:/d0/", "raw:/d3/", "raw:/d4/", "raw:/d5/"]
    full = run(client, shout, {"raw": changed}, incremental=False, output_repo="shouted-full")
    assert len(full.ran) == 6
    assert contents(client, incremental.ref, tmp_path) == contents(client, full.ref, tmp_path)
    assert "d2/part.txt" not in contents(client, incremental.ref, tmp_path)


def test_a_changed_parameter_runs_every_datum(client: Client, tmp_path: Path):
    raw = put(client, tmp_path, "raw", {"a.txt": "a", "b.txt": "b"})
    run(client, shout, {"raw": raw})
    definition = shout.definition
    result = run_step(client, definition, {"raw": raw}, {"suffix": "?"}, ProvenanceRecord(), print)
    assert sorted(result.ran) == ["raw:/a.txt", "raw:/b.txt"]


def test_parallel_equals_serial(client: Client, tmp_path: Path):
    raw = put(client, tmp_path, "raw", {f"f{i}.txt": f"file {i}" for i in range(8)})
    serial = run(client, shout, {"raw": raw})
    parallel = run(client, shout, {"raw": raw}, parallelism=3, output_repo="shouted-parallel")
    assert len(parallel.ran) == 8
    assert contents(client, serial.ref, tmp_path) == contents(client, parallel.ref, tmp_path)


def test_two_datums_writing_one_path_fail_naming_both(client: Client, tmp_path: Path):
    raw = put(client, tmp_path, "raw", {"a.txt": "a", "b.txt": "b"})
    with pytest.raises(
        KfpPachydermError, match=r"'raw:/a.txt' and 'raw:/b.txt' both wrote /summary.txt"
    ):
        run(client, clash, {"raw": raw})
    head = inspect_commit(client, CommitRef("clash", branch="master"))
    assert "both wrote /summary.txt" in head.error


def test_a_failing_datum_finishes_the_commit_with_the_error_and_nothing_in_it(
    client: Client, tmp_path: Path
):
    raw = put(client, tmp_path, "raw", {"good.txt": "g", "bad.txt": "b"})
    with pytest.raises(KfpPachydermError, match="datum raw:/bad.txt failed: ValueError"):
        run(client, fragile, {"raw": raw})
    failed = inspect_commit(client, CommitRef("fragile", branch="master"))
    assert "this datum is bad on purpose" in failed.error
    listed = client.pfs.walk_file(
        file=CommitRef("fragile", commit=failed.commit.id, path="/").pfs_file()
    )
    assert [f.file.path for f in listed if f.file_type == pfs.FileType.FILE] == []
    with pytest.raises(
        KfpPachydermError, match=f"at commit {failed.commit.id}, which was finished"
    ):
        run(client, shout, {"raw": CommitRef("fragile", branch="master")})
    on_purpose = run(client, shout, {"raw": CommitRef("fragile", commit=failed.commit.id)})
    assert contents(client, on_purpose.ref, tmp_path) == {}


def test_a_glob_that_matches_nothing_gives_an_empty_commit_and_says_so(
    client: Client, tmp_path: Path
):
    raw = put(client, tmp_path, "raw", {"a.txt": "a"})
    lines: list[str] = []
    definition = dataclasses.replace(shout.definition, globs={"raw": "/nothing-*"})
    result = run_step(client, definition, {"raw": raw}, {}, ProvenanceRecord(), lines.append)
    assert result.ran == ()
    assert contents(client, result.ref, tmp_path) == {}
    assert any("matched nothing" in line for line in lines)


@pytest.mark.slow
def test_the_compiled_yaml_loads_and_runs(kfp_local: Client, tmp_path: Path):
    target = tmp_path / "shout.yaml"
    compiler.Compiler().compile(shout, str(target))
    loaded = components.load_component_from_file(str(target))
    put(kfp_local, tmp_path, "raw", {"a.txt": "yaml"})
    task = loaded(raw_ref="raw@master")
    out = CommitRef("shouted", commit=task.outputs["Output"])
    assert contents(kfp_local, out, tmp_path) == {"a.txt": b"YAML!"}


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: pfs_step("x")(lambda raw, out: None), "plain function defined with def"),
        (lambda: pfs_step("x")(_no_output), "no output directory parameter 'out'"),
        (lambda: pfs_step("x")(_object_parameter), "parameter type object is not supported"),
        (lambda: pfs_step("x", glob="*")(_plain), "invalid glob '\\*' for input 'raw'"),
        (lambda: pfs_step("x", glob={"other": "/*"})(_plain), "glob names other"),
        (lambda: pfs_step("bad repo!")(_plain), "invalid output repo name 'bad repo!'"),
        (lambda: pfs_step("x", parallelism=0)(_plain), "invalid parallelism 0"),
    ],
)
def test_a_function_that_cannot_be_a_step_is_refused_when_declared(declare, message):
    with pytest.raises(KfpPachydermError, match=message):
        declare()


def test_an_input_that_is_not_a_commit_reference_fails_before_any_write(
    kfp_local: Client, tmp_path: Path
):
    with pytest.raises(RuntimeError):
        shout(raw="not a reference!")
    assert not kfp_local.pfs.repo_exists(CommitRef("shouted").pfs_repo())


def test_step_definition_errors_are_type_errors_too():
    assert issubclass(StepDefinitionError, TypeError)


def _no_output(raw, result):
    pass


def _object_parameter(raw, out, options: object = None):
    pass


def _plain(raw, out):
    pass


@pytest.mark.slow
def test_the_readme_example_runs_and_reruns_only_the_changed_datum(kfp_local: Client, tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    [example] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "@pfs_step" in b]
    source = tmp_path / "readme_steps.py"
    source.write_text(example)
    spec = importlib.util.spec_from_file_location("readme_steps", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = "\n".join(f"{i},Title {i},Body {i}" for i in range(40))
    files = {"a.csv": f"id,title,body\n{rows}\n", "b.csv": "id,title,body\n1,One,Two\n"}
    put(kfp_local, tmp_path, "raw_data", files)
    module.prepare()
    first = contents(kfp_local, CommitRef("pre_process", branch="master"), tmp_path)
    assert sorted(first) == ["a.csv", "b.csv"]
    assert first["b.csv"] == b"id,title,body\n1,one,two\n"

    files["b.csv"] = "id,title,body\n2,Changed,Text\n"
    put(kfp_local, tmp_path, "raw_data", files)
    module.prepare()
    split_head = inspect_commit(kfp_local, CommitRef("split", branch="master"))
    index = json.loads(split_head.metadata["kfp_pachyderm.datums"])
    assert sorted(index) == ["raw:/a.csv", "raw:/b.csv"]
    assert read_provenance(split_head).extra == {"datums_ran": "1", "datums_carried": "1"}
    second = contents(kfp_local, CommitRef("pre_process", branch="master"), tmp_path)
    assert second["a.csv"] == first["a.csv"]
    assert second["b.csv"] == b"id,title,body\n2,changed,text\n"


def _flaky(raw, out, marker: str = ""):
    """Fails on its first two calls (counted in ``marker``), leaving a partial output."""
    from pathlib import Path

    calls = Path(marker)
    calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
    (Path(out) / f"partial-{len(calls.read_text())}.txt").write_text("partial")
    if len(calls.read_text()) < 3:
        raise RuntimeError(f"flaky call {len(calls.read_text())}")
    (Path(out) / "done.txt").write_text("done")


def test_a_failing_datum_is_tried_again_in_an_empty_output(client: Client, tmp_path: Path):
    from kfp_pachyderm.kfp.contract import step_record
    from kfp_pachyderm.steps.definition import define_step

    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    raw = commit_data(client, str(folder), CommitRef.parse("raw@master")).ref
    marker = tmp_path / "calls"
    three, _ = define_step(_flaky, "flaky", datum_tries=3)
    result = run_step(client, three, {"raw": raw}, {"marker": str(marker)}, step_record())
    written = {f.file.path for f in client.pfs.walk_file(file=result.ref.with_path("/").pfs_file())}
    assert written == {"/", "/partial-3.txt", "/done.txt"}  # the third try's output only
    assert marker.read_text() == "xxx"

    marker.unlink()
    two, _ = define_step(_flaky, "flaky2", datum_tries=2)
    with pytest.raises(OperationError, match=r"flaky call 2 \(after 2 tries\)"):
        run_step(client, two, {"raw": raw}, {"marker": str(marker)}, step_record())
    with pytest.raises(StepDefinitionError, match="invalid datum_tries 0"):
        define_step(_flaky, "flaky3", datum_tries=0)
