"""Address and token resolution, and clear errors for bad, unreachable or refused settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from kfp_pachyderm.errors import ConnectionSettingsError
from kfp_pachyderm.local.server import LocalPachyderm
from kfp_pachyderm.pfs.connection import connect, resolve_settings

from .conftest import free_port


def test_order_argument_env_config_cluster(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PACHD_ADDRESS", "env-host:1234")
    assert resolve_settings("arg-host:1").address == "grpc://arg-host:1"
    assert resolve_settings().address == "grpc://env-host:1234"
    monkeypatch.delenv("PACHD_ADDRESS")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"v2": {"active_context": "c", "contexts": {"c": {"pachd_address": "grpc://cfg:5"}}}}
        )
    )
    monkeypatch.setenv("PACH_CONFIG", str(config))
    assert resolve_settings().address_source == f"pachctl config {config}"
    config.unlink()
    monkeypatch.setenv("PACHD_PEER_SERVICE_HOST", "pachd")
    monkeypatch.setenv("PACHD_PEER_SERVICE_PORT", "30653")
    assert resolve_settings().address_source == "in-cluster"


def test_no_settings_says_what_to_set():
    with pytest.raises(ConnectionSettingsError, match="set PACHD_ADDRESS"):
        resolve_settings()


@pytest.mark.parametrize("bad", ["ftp://host:1", "host", "grpc://host:1/path", "host:notaport"])
def test_invalid_address_is_named(bad):
    with pytest.raises(ConnectionSettingsError, match=f"invalid pachd address '{bad}'"):
        connect(bad)


def test_unreachable_address_is_named():
    address = f"grpc://127.0.0.1:{free_port()}"
    with pytest.raises(
        ConnectionSettingsError, match="cannot reach pachd at 127.0.0.1:.* \\(from argument\\)"
    ):
        connect(address)


def test_token_sources_and_a_wrong_token_never_shown(monkeypatch, tmp_path: Path, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "tok-" + "x" * 20
    with LocalPachyderm(tmp_path / "pfs", token=secret) as server:
        token_file = tmp_path / "token"
        token_file.write_text(secret + "\n")
        monkeypatch.setenv("KFP_PACHYDERM_TOKEN_FILE", str(token_file))
        assert connect(server.address).auth_token == secret

        monkeypatch.setenv("PACH_PYTHON_AUTH_TOKEN", "wrong-token-value")
        with pytest.raises(ConnectionSettingsError) as err:
            connect(server.address)
        assert "rejected the token from PACH_PYTHON_AUTH_TOKEN" in str(err.value)
        assert "wrong-token-value" not in str(err.value)
        assert connect(server.address, token=secret).pfs.repo_exists is not None
    assert secret not in caplog.text and "wrong-token-value" not in caplog.text
    assert secret not in repr(resolve_settings("h:1", token=secret))


def test_missing_token_file_is_named(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("KFP_PACHYDERM_TOKEN_FILE", str(tmp_path / "absent"))
    with pytest.raises(
        ConnectionSettingsError, match="absent' \\(from KFP_PACHYDERM_TOKEN_FILE\\) does not exist"
    ):
        resolve_settings("h:1")


def test_tls_against_a_plain_text_server_says_so(server: LocalPachyderm):
    plain = server.address.removeprefix("grpc://")
    with pytest.raises(ConnectionSettingsError, match=f"use grpc://{plain}") as raised:
        connect(f"grpcs://{plain}")
    assert "is it running" not in str(raised.value)
