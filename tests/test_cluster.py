"""Cluster helpers chain, and put secret names, never secret values, into compiled YAML."""

import re
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from kfp_pachyderm.errors import ConnectionSettingsError
from kfp_pachyderm.kfp.cluster import use_pachyderm
from kfp_pachyderm.kfp.compile import load_component

from .conftest import REPO_ROOT


def test_use_pachyderm_sets_address_and_mounts_the_token(tmp_path: Path):
    commit_data = load_component("commit_data")

    @dsl.pipeline
    def ingest(source: str = "s3://bucket/x"):
        task = use_pachyderm(
            commit_data(source=source, repo="raw"),
            address="grpc://pachd.pachyderm.svc.cluster.local:30650",
            token_secret="pachd-token",
        )
        assert isinstance(task, dsl.PipelineTask)

    out = tmp_path / "p.yaml"
    compiler.Compiler().compile(ingest, str(out))
    docs = list(yaml.safe_load_all(out.read_text()))
    container = docs[0]["deploymentSpec"]["executors"]["exec-commit-data"]["container"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PACHD_ADDRESS"] == "grpc://pachd.pachyderm.svc.cluster.local:30650"
    assert "KFP_PACHYDERM_TOKEN_FILE" not in env  # the default key lands at the default path
    secret = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-commit-data"]
    volume = secret["secretAsVolume"][0]
    assert volume["secretName"] == "pachd-token"
    assert volume["mountPath"] == "/var/run/secrets/kfp-pachyderm"
    assert volume["optional"] is True


def test_bad_address_is_refused_at_compile_time():
    commit_data = load_component("commit_data")
    with pytest.raises(ConnectionSettingsError, match="invalid pachd address 'pachd'"):

        @dsl.pipeline
        def ingest():
            use_pachyderm(commit_data(source="/x", repo="raw"), address="pachd")


def test_a_pipeline_parameter_as_address_is_refused_with_the_way_out():
    commit_data = load_component("commit_data")
    with pytest.raises(ConnectionSettingsError, match="fixed at compile time.*ConfigMap"):

        @dsl.pipeline
        def ingest(pachd: str = "grpc://pachd:30650"):
            use_pachyderm(commit_data(source="/x", repo="raw"), address=pachd)


def test_the_readme_pipeline_example_compiles_with_the_configmap_and_the_secret(tmp_path: Path):
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    [example] = [block for block in blocks if "use_pachyderm(" in block]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    out = tmp_path / "ingest.yaml"
    compiler.Compiler().compile(namespace["ingest"], str(out))
    platform = list(yaml.safe_load_all(out.read_text()))[1]["platforms"]["kubernetes"]
    for executor in ("exec-commit-data", "exec-inspect-provenance"):
        settings = platform["deploymentSpec"]["executors"][executor]
        assert settings["configMapAsEnv"][0]["configMapName"] == "kfp-pachyderm"
        assert settings["secretAsVolume"][0]["secretName"] == "pachd-token"
