"""The components run in the images this checkout builds, as KFP runs them: the compiled
pipeline YAML loaded as it is, run by the real ``kfp.local.DockerRunner`` through the real
``docker`` client, each step a container of the image the YAML names, with the YAML's command
and arguments, against the local Pachyderm server on the host network.

The YAML names ``ghcr.io/kfp-pachyderm/...`` images; the images built here are tagged with
those names too, so nothing is pulled. The GPU image (``kfp-pachyderm-trainer-gpu``) cannot be
built here (its CUDA base cannot be pulled): the CPU trainer image, which holds the same library
and TensorFlow, is tagged with its name for the ``train`` step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kfp import components, local
from pachyderm_sdk import Client

from kfp_pachyderm import (
    CommitRef,
    LocalPachyderm,
    commit_data,
    inspect_commit,
    read_provenance,
    read_tree,
)
from kfp_pachyderm.kfp.images import image

from .conftest import REPO_ROOT
from .docker_api import DockerApi, host_network_runner
from .images import build_test_images, podman

pytestmark = pytest.mark.slow


def tag_as_the_yaml_names_them() -> dict[str, str]:
    """Tag the built images with the default registry's names; the name of each, by image."""
    built = build_test_images()
    names = {
        "runtime": image("kfp-pachyderm-runtime"),
        "trainer": image("kfp-pachyderm-trainer"),
    }
    for short, name in names.items():
        podman("tag", built[short].tag, name)
    podman("tag", built["trainer"].tag, image("kfp-pachyderm-trainer-gpu"))
    return {**names, "trainer-gpu": image("kfp-pachyderm-trainer-gpu")}


@pytest.fixture
def docker_runner(tmp_path: Path, monkeypatch):
    """kfp.local with the DockerRunner, through the test Docker API server, on a real local
    server; yields (client, docker api, the server's address)."""
    with LocalPachyderm(tmp_path / "pfs") as server, DockerApi() as api:
        monkeypatch.setenv("DOCKER_HOST", api.url)
        local.init(
            runner=host_network_runner({"PACHD_ADDRESS": server.address}),
            pipeline_root=str(tmp_path / "root"),
        )
        yield Client.from_pachd_address(server.address), api, server.address


def test_issue_summarization_runs_every_step_in_its_image(docker_runner, tmp_path: Path):
    from kfp_pachyderm.summarizer.stages import write_demo_shards

    client, api, _ = docker_runner
    names = tag_as_the_yaml_names_them()
    shards = tmp_path / "issues"
    write_demo_shards(shards, limit=300)
    data = commit_data(client, str(shards), CommitRef.parse("raw_data@master")).ref
    pipeline = components.load_component_from_file(
        str(REPO_ROOT / "pipelines/issue_summarization.yaml")
    )
    pipeline(data=str(data), epochs=1, token_secret="")

    ran = [(body["Image"], " ".join(body["Cmd"])) for body in api.created]
    functions = {fn: img for img, cmd in ran for fn in _functions(cmd)}
    assert functions["split"] == functions["pre_process"] == names["runtime"]
    assert functions["train"] == names["trainer-gpu"]
    assert functions["resolve_commit"] == functions["finish_open_commits"] == names["runtime"]
    model = read_provenance(inspect_commit(client, CommitRef.parse("train@master")))
    # The record names the image the step ran in, as it was built (KFP_PACHYDERM_IMAGE).
    assert model.step == "train" and model.image == build_test_images()["trainer"].tag
    out = tmp_path / "model"
    read_tree(client, CommitRef.parse("train@master"), out)
    assert any(out.rglob("saved_model.pb"))


def _functions(command: str) -> list[str]:
    """The ``--function_to_execute`` names in a component's command line."""
    words = command.split()
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--function_to_execute"]
