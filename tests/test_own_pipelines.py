"""A user's own pipeline through the command line, as the README's own-steps section shows it:
``run file.py:function --local`` (then again after one changed file), ``--host`` against the
KFP API test server, ``watch --local``, ``compile``, and the one-line errors of a bad target."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pachyderm_sdk import Client

from kfp_pachyderm.cli.main import main
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.commits import inspect_commit, is_finished
from kfp_pachyderm.pfs.ingest import commit_data
from kfp_pachyderm.pfs.provenance import read_provenance
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.pfs.transfer import read_tree

from .conftest import CLI, REPO_ROOT
from .kfp_api import KfpApi

README = (REPO_ROOT / "README.md").read_text()


def readme_pipeline(folder: Path) -> Path:
    """The README's own-steps example, saved as ``pipelines.py`` the way it tells you to."""
    [code] = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "@pfs_step" in b]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipelines.py"
    path.write_text(code)
    return path


def readme_command() -> list[str]:
    """The README's command that runs the example, as arguments after ``kfp-pachyderm``."""
    [line] = [
        line
        for block in re.findall(r"```bash\n(.*?)```", README, re.S)
        for line in block.splitlines()
        if "pipelines.py:prepare --local" in line
    ]
    return line.split()[1:]


def write_issues(folder: Path, count: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        rows = [f"{n}-{i},Title {n} {i},Body of issue {n} {i}" for i in range(30)]
        (folder / f"issues-{n:02d}.csv").write_text("url,title,body\n" + "\n".join(rows) + "\n")


def cli(cwd: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def step_lines(out: str) -> dict[str, str]:
    """Each step's outcome line on the console: step name -> what it did."""
    found = {}
    for line in out.splitlines():
        match = re.match(r"^  ([\w-]+): (reused .*|\d+ datums? ran.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_readme_example_runs_then_reruns_only_the_changed_datum(tmp_path: Path):
    work = tmp_path / "work"
    readme_pipeline(work)
    write_issues(work / "issues")
    argv = [*readme_command(), "--data-dir", str(tmp_path / "run")]

    first = cli(work, *argv)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert set(step_lines(first.stdout)) == {"split", "pre-process"}
    assert step_lines(first.stdout)["split"].startswith("20 datums ran, 0 carried over")
    assert "result: pfs://default/pre_process@" in first.stdout
    assert " INFO " not in first.stdout + first.stderr  # the library's INFO lines: log file only
    [hint] = re.findall(r"look at it with: (\S+) local serve", first.stdout)
    assert shutil.which(hint) or (work / hint).is_file()  # a command that works from here
    [log] = re.findall(r"^full logs: (.*)$", first.stdout, re.M)
    assert "executor_input" in Path(log).read_text() and " INFO " in Path(log).read_text()

    changed = work / "issues" / "issues-07.csv"
    changed.write_text(changed.read_text().replace("Title 7 ", "A new title 7 "))
    second = cli(work, *argv)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    lines = step_lines(second.stdout)
    assert lines["split"].startswith("1 datum ran, 19 carried over"), second.stdout
    assert lines["pre-process"].startswith("1 datum ran, 19 carried over"), second.stdout

    third = cli(work, *argv)
    assert step_lines(third.stdout)["split"].startswith("reused pfs://default/split@")
    assert sorted(p.name for p in work.iterdir()) == ["issues", "pipelines.py"]  # nothing else

    with LocalPachyderm(tmp_path / "run" / "pfs") as server:
        client = Client.from_pachd_address(server.address)
        read_tree(client, CommitRef.parse("pre_process@master"), tmp_path / "out")
    assert len(list((tmp_path / "out").iterdir())) == 20  # every datum's output
    assert "a new title 7" in (tmp_path / "out" / "issues-07.csv").read_text()


@pytest.mark.slow
def test_a_user_pipeline_reads_data_only_from_its_input(tmp_path: Path):
    readme_pipeline(tmp_path)
    empty = cli(tmp_path, "run", "pipelines.py:prepare", "--local", "--data-dir", str(tmp_path))
    assert empty.returncode == 2
    [line] = empty.stderr.strip().splitlines()
    assert "data=raw_data@master holds no data" in line and "--put PATH" in line
    second = str(tmp_path / "second")
    missing = cli(
        tmp_path, "run", "pipelines.py:prepare", "--local", "--put", "nope/", "--data-dir", second
    )
    assert missing.returncode == 2 and "--put 'nope/': no such file" in missing.stderr
    assert not Path(second).exists()  # refused before any server started


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nope.py:prepare", "no pipeline file 'nope.py'"),
        ("pipelines.py:missing", "has no pipeline 'missing'; its pipelines: prepare"),
        ("pipelines.py:split", "pipelines.py:split is a PfsStep, not a @dsl.pipeline"),
        ("no_such_module:prepare", "no module named 'no_such_module'"),
        ("broken.py:prepare", "cannot load broken.py: line 1: invalid syntax"),
        (
            "pipelines.py:prepare --param test_fraction=lots",
            "test_fraction='lots': expected a number",
        ),
        ("pipelines.py:prepare --param nope=1", "unknown parameter 'nope'"),
        ("pipelines.py:prepare --input nope", "--input 'nope' is not a parameter"),
    ],
)
def test_a_bad_target_is_one_line_and_exit_2(tmp_path: Path, target: str, message: str):
    readme_pipeline(tmp_path)
    (tmp_path / "broken.py").write_text("def prepare(:\n    pass\n")
    result = cli(tmp_path, "run", *target.split(), "--local", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert message in line and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_compile_writes_the_pipeline_yaml(tmp_path: Path):
    path = readme_pipeline(tmp_path / "src")
    result = cli(tmp_path, "compile", str(path) + ":prepare", "--output", "out/prepare.yaml")
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load((tmp_path / "out" / "prepare.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "prepare"
    assert set(spec["root"]["dag"]["tasks"]) == {"split", "pre-process"}
    assert spec["root"]["inputDefinitions"]["parameters"]["data"]["defaultValue"] == (
        "raw_data@master"
    )
    default = cli(tmp_path / "src", "compile", "pipelines.py:prepare")
    assert default.returncode == 0 and (tmp_path / "src" / "prepare.yaml").is_file()


def test_run_host_submits_the_users_pipeline(tmp_path: Path, capsys):
    path = readme_pipeline(tmp_path)
    api = KfpApi()
    try:
        api.first_state = "SUCCEEDED"
        code = main(["run", f"{path}:prepare", "--host", api.host, "--param", "data=issues@v2"])
        [run] = api.runs.values()
    finally:
        api.stop()
    assert code == 0, capsys.readouterr()
    spec = run["pipeline_spec"].get("pipeline_spec", run["pipeline_spec"])  # with platform spec
    assert spec["pipelineInfo"]["name"] == "prepare"
    assert run["runtime_config"]["parameters"]["data"] == "issues@v2"
    assert "SUCCEEDED" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_watch_local_runs_the_users_pipeline_on_each_commit(tmp_path: Path, capsys):
    path = readme_pipeline(tmp_path)
    write_issues(tmp_path / "issues", count=3)
    data_dir = tmp_path / "run"
    with LocalPachyderm(data_dir / "pfs") as server:
        client = Client.from_pachd_address(server.address)
        first = commit_data(client, str(tmp_path / "issues"), CommitRef.parse("raw_data@master"))
    argv = ["watch", "raw_data@master", "--pipeline", f"{path}:prepare", "--local"]
    assert main([*argv, "--data-dir", str(data_dir), "--max-runs", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{first.ref.with_path(None)}: run local-" in out
    with LocalPachyderm(data_dir / "pfs") as server:
        client = Client.from_pachd_address(server.address)
        head = inspect_commit(client, CommitRef.parse("pre_process@master"))
        assert head.finished and not head.error


USER_SCRIPT = """
import sys

from kfp import dsl, local

from kfp_pachyderm import pfs_step


@pfs_step(output_repo="m15")
def slow(raw, out, started: str = "", hold: float = 0.0):
    import time
    from pathlib import Path

    (Path(out) / "done.txt").write_text("done")
    if started:
        Path(started).write_text("started")
    time.sleep(hold)


@dsl.pipeline
def hold(data: str = "raw@master", started: str = "", seconds: float = 0.0):
    slow(raw=data, started=started, hold=seconds)


local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1])
hold(started=sys.argv[2], seconds=float(sys.argv[3]))
"""


def _user_runs(tmp_path: Path, server) -> tuple:
    """The user's kfp.local script of :data:`USER_SCRIPT`, started with a hold in seconds and
    a file the step writes once it runs; and a client of ``server``."""
    import os
    import sys

    env = {**os.environ, "PACHD_ADDRESS": server.address}
    client = Client.from_pachd_address(server.address)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    commit_data(client, str(tmp_path / "in"), CommitRef.parse("raw@master"))
    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT)

    def user_run(seconds: str, started: Path, root: str = "root") -> subprocess.Popen:
        args = [sys.executable, str(script), str(tmp_path / root), str(started), seconds]
        return subprocess.Popen(
            args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip

    return user_run, client


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    import time

    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert path.exists(), process.stdout.read() if process.poll() is not None else "not started"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_next_run_recovers_what_a_killed_kfp_local_script_left(tmp_path: Path, server_process):
    """kill -9 of a kfp.local script (and its step) leaves its output commit open; the step's
    process is gone on this host, so the next run finishes that commit with the error and
    writes its own, without waiting and without a command to type."""
    import os
    import signal

    server = server_process()
    user_run, client = _user_runs(tmp_path, server)
    started = tmp_path / "started"
    killed = user_run("600", started)
    _wait_for(started, killed)
    os.killpg(killed.pid, signal.SIGKILL)  # the script and its step, as a terminal's kill -9
    killed.wait()
    stuck = client.pfs.inspect_commit(commit=CommitRef.parse("m15@master").pfs_commit())
    assert not is_finished(stuck)

    again = user_run("0", tmp_path / "started-again")
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output[-3000:]
    left = client.pfs.inspect_commit(commit=CommitRef("m15", commit=stuck.commit.id).pfs_commit())
    assert is_finished(left) and "abandoned by a local run that is gone" in left.error
    head = inspect_commit(client, CommitRef.parse("m15@master"))
    assert is_finished(head) and not head.error and head.commit.id != stuck.commit.id

    empty = cli(tmp_path, "finish-open", "m15@master", "--run", "", "--address", server.address)
    assert empty.returncode == 2 and "--run '' is empty" in empty.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_runs_of_one_step_at_once_both_succeed_one_after_the_other(
    tmp_path: Path, server_process
):
    """Two kfp.local runs of one pipeline against one server, the second started while the
    first writes: it waits for the first's commit, then writes its own on top; both succeed
    and nothing is left open."""
    server = server_process()
    user_run, client = _user_runs(tmp_path, server)
    first_started, second_started = tmp_path / "first", tmp_path / "second"
    first = user_run("4", first_started, root="root-1")
    _wait_for(first_started, first)
    second = user_run("0", second_started, root="root-2")
    first_out, _ = first.communicate(timeout=300)
    second_out, _ = second.communicate(timeout=300)
    assert first.returncode == 0, first_out[-3000:]
    assert second.returncode == 0, second_out[-3000:]
    assert "waiting for m15@" in second_out
    commits = list(client.pfs.list_commit(repo=CommitRef("m15").pfs_repo()))  # newest first
    assert all(is_finished(c) and not c.error for c in commits)
    newest, older = (read_provenance(c) for c in commits[:2])
    assert (newest.step, older.step) == ("slow", "slow")
    assert (newest.parameters["started"], older.parameters["started"]) == (
        json.dumps(str(second_started)),
        json.dumps(str(first_started)),
    )
    assert commits[0].parent_commit.id == commits[1].commit.id
    head = CommitRef("m15", commit=commits[0].commit.id).with_path("/done.txt")
    with client.pfs.pfs_file(head.pfs_file()) as f:
        assert f.read() == b"done"  # what a serial run writes


def test_every_builtin_pipeline_reads_the_data_input_its_spec_names():
    from kfp_pachyderm.pipelines import SPECS

    from kfp_pachyderm.cli.targets import resolve_target

    for name, spec in SPECS.items():
        target = resolve_target(name)
        assert target.spec() is spec and target.data_input() == spec.data
        assert target.spec("token_secret").data == "token_secret"  # --input names another


def test_a_users_pipeline_gets_a_spec_by_the_generic_rule(tmp_path: Path):
    from kfp_pachyderm.cli.targets import resolve_target

    spec = resolve_target(f"{readme_pipeline(tmp_path)}:prepare").spec()
    assert spec.data == "data" and spec.outputs == () and spec.result is None
    assert spec.demo_data == "" and spec.report == ()


def test_a_cancelled_run_finishes_what_it_left_open_on_any_branch(client: Client):
    """A step may write to any output branch (``pfs_step(output_branch="dev")``): a cancelled
    local run finishes its open commits there too, not only on ``master``."""
    from kfp_pachyderm.cli.run_local import finish_run_commits
    from kfp_pachyderm.pfs.commits import ensure_repo
    from kfp_pachyderm.pfs.provenance import ProvenanceRecord, record_provenance

    def left_open(branch: str, step: str, run_id: str) -> str:
        """An open commit a step of ``run_id`` started and, killed, never finished."""
        ref = CommitRef.parse(branch)
        ensure_repo(client, ref)
        commit = client.pfs.start_commit(branch=ref.pfs_branch())
        record_provenance(client, ref.at(commit.id), ProvenanceRecord(step=step, kfp_run_id=run_id))
        return commit.id

    mine = left_open("scores@dev", "score", "local-1")
    other = left_open("other@master", "other", "local-2")

    assert finish_run_commits(client, "local-1") == ["scores@dev"]
    head = inspect_commit(client, CommitRef.parse("scores@dev"))
    assert head.commit.id == mine and "ended before step score" in head.error
    still = inspect_commit(client, CommitRef("other", commit=other))
    assert still.finished is None or still.finished.year <= 1970  # another run's: left alone


DEV_PIPELINE = """
from kfp import dsl

from kfp_pachyderm import pfs_step


@pfs_step(output_repo="scores", output_branch="dev")
def score(raw, out, started: str = "", kill: bool = False):
    import os
    import signal
    import time
    from pathlib import Path

    (Path(out) / "partial.txt").write_text("partial")
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)
    Path(started).write_text("started")
    time.sleep(300)


@dsl.pipeline
def scoring(data: str = "raw@master", started: str = "", kill: bool = False):
    score(raw=data, started=started, kill=kill)
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", ["cancelled", "killed"])
def test_a_step_writing_another_branch_leaves_no_open_commit_when_its_run_stops(
    how: str, tmp_path: Path
):
    """A step with ``output_branch="dev"``: whether its run is cancelled (SIGTERM) or the step
    is killed (SIGKILL, so the run fails), the commit it left open on ``scores@dev`` is
    finished with an error before the command exits."""
    import contextlib
    import os
    import signal
    import time

    (tmp_path / "pipeline.py").write_text(DEV_PIPELINE)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    started, log = tmp_path / "started", tmp_path / "out.log"
    argv = [*CLI, "run", "pipeline.py:scoring", "--local", "--put", "in"]
    argv += ["--data-dir", str(tmp_path / "run"), "--param", f"started={started}"]
    argv += ["--param", f"kill={str(how == 'killed').lower()}"]
    with log.open("w") as out:
        run = subprocess.Popen(
            argv, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        if how == "cancelled":
            deadline = time.monotonic() + 300
            while not started.exists() and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert started.exists(), log.read_text()[-3000:]
            run.send_signal(signal.SIGTERM)
        run.wait(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # a cancelled run's step, still sleeping
    output = log.read_text()
    assert run.returncode == (130 if how == "cancelled" else 1), output[-3000:]
    assert "finished 1 commit(s) the run left open: scores@dev" in output
    with LocalPachyderm(tmp_path / "run" / "pfs") as server:
        client = Client.from_pachd_address(server.address)
        head = inspect_commit(client, CommitRef.parse("scores@dev"))
    assert head.finished and head.finished.year > 1970
    assert "ended before step score finished" in head.error
