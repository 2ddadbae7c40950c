"""Off the happy path: the user's own data on an input branch is left alone, and an errored
head commit is refused as an input."""

from __future__ import annotations

from pathlib import Path

import pytest
from pachyderm_sdk import Client

from kfp_pachyderm import CommitRef, LocalPachyderm, commit_data, inspect_commit
from kfp_pachyderm.cli.main import main

from .conftest import one_error_line

pytestmark = pytest.mark.slow


def test_user_data_on_the_input_branch_survives_and_an_errored_head_is_refused(
    tmp_path: Path, capsys
):
    data_dir = tmp_path / "run"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my-own.txt").write_text("not demo data")
    with LocalPachyderm(data_dir / "pfs") as server:
        client = Client.from_pachd_address(server.address)
        user = commit_data(client, str(mine), CommitRef("images", branch="master")).ref
    assert main(["run", "gpu_check", "--local", "--data-dir", str(data_dir)]) == 0
    assert "using the data on images@master as it is" in capsys.readouterr().out
    with LocalPachyderm(data_dir / "pfs") as server:
        client = Client.from_pachd_address(server.address)
        head = inspect_commit(client, CommitRef("images", branch="master"))
        assert head.commit.id == user.commit
        bad = client.pfs.start_commit(branch=CommitRef("images", branch="master").pfs_branch())
        client.pfs.finish_commit(commit=bad, error="upload interrupted")
    assert main(["run", "gpu_check", "--local", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("kfp-pachyderm:")]
    assert len(failed) == 1 and bad.id in failed[0] and "upload interrupted" in failed[0]
    assert main(["run", "gpu_check", "--local", "--data-dir", str(data_dir),
                 "--param", "input_data=ghost@master"]) == 2  # fmt: skip
    assert "input_data=ghost@master holds no data" in one_error_line(capsys)
