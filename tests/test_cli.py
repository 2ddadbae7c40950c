"""The command line: exit codes and output scripts can rely on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pachyderm_sdk import Client

from .conftest import CLI


def test_demo_commits_reads_back_and_shows_the_commit(tmp_path: Path):
    result = subprocess.run(
        [*CLI, "demo", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "read back 201 files, identical" in result.stdout
    assert "commit pfs://default/demo-data@" in result.stdout


def test_local_serve_prints_its_address_and_serves(server_process):
    server = server_process()
    assert Client.from_pachd_address(server.address).get_version().minor == 12


def test_bad_usage_exits_2(tmp_path: Path):
    result = subprocess.run([*CLI, "local", "serve", "--port", "x"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid int value: 'x'" in result.stderr
