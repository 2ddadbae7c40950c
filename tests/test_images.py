"""The images under ``images/``: locked, built here with podman from their Dockerfiles, and what
is inside them works; ``kfp-pachyderm images`` refuses bad input before building anything."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from kfp_pachyderm.imagebuild import (
    DEBIAN_BASE,
    BuildSettings,
    build_images,
    default_cache,
    image_sources,
    push_image,
)
from kfp_pachyderm.kfp.images import image

from .conftest import CLI, REPO_ROOT
from .images import TEST_REGISTRY, build_test_images, podman

# The modules that run only in a trainer or MLServer image.
SERVING_OR_TRAINING = ("kfp_pachyderm.trainer.", "kfp_pachyderm.mlserver.runtime")
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$", re.MULTILINE)


def pins(lock: Path) -> dict[str, str]:
    """The ``name==version`` pins of a lock, by normalised name."""
    return {
        name.lower().replace("_", "-"): version for name, version in _PIN.findall(lock.read_text())
    }


def _satisfied(requirements: list[str], lock: Path) -> list[str]:
    """The requirements the lock's pins do not satisfy."""
    pinned = pins(lock)
    unmet = []
    for text in requirements:
        req = Requirement(text)
        version = pinned.get(req.name.lower().replace("_", "-"))
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{text} (lock has {version})")
    return unmet


def test_each_lock_pins_what_its_image_needs_with_hashes():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    needs = {
        "runtime": project["dependencies"],
        "trainer": project["dependencies"] + project["optional-dependencies"]["train"],
    }
    for name in ("seldon", "mlserver"):
        lines = (REPO_ROOT / "images" / name / "requirements.txt").read_text().splitlines()
        needs[name] = [line for line in lines if line and not line.startswith("#")]
    images = {source.short_name: source for source in image_sources(REPO_ROOT)}
    for name, requirements in needs.items():
        assert _satisfied(requirements, images[name].lock) == [], name
    trainer, gpu = pins(images["trainer"].lock), pins(images["trainer-gpu"].lock)
    assert gpu == {k: v for k, v in trainer.items() if k != "tensorflow-cpu"}
    for source in images.values():
        text = source.lock.read_text()
        hashed = re.findall(r"^\S+==\S+ \\\n    --hash=sha256:[0-9a-f]{64}", text, re.MULTILINE)
        assert len(hashed) == text.count("==") > 0, source.lock


def test_every_dockerfile_takes_its_base_as_an_argument_and_downloads_nothing():
    for source in image_sources(REPO_ROOT):
        text = source.dockerfile.read_text()
        assert re.search(r"^ARG BASE=\S+\nFROM \$\{BASE\}$", text, re.MULTILINE), source
        installs = re.findall(r"pip install[^\n]*", text)
        assert installs and all("--no-index" in line for line in installs), source
        assert "--mount=type=bind,from=wheels" in text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["build", "--only", "nope"], "no image named nope: choose from mlserver, runtime"),
        (["build", "--registry", "Bad_Registry"], "'Bad_Registry' is not a registry"),
        (["build", "--base", "x", "--debian-base"], "not allowed with argument"),
        (["list", "--source", "/"], "/ has no images/<name>/Dockerfile"),
    ],
)
def test_images_command_refuses_bad_input_in_one_line(args, named, tmp_path: Path):
    result = subprocess.run(
        [*CLI, "images", *args, "--cache", str(tmp_path / "cache")]
        if args[0] == "build"
        else [*CLI, "images", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 2, result.stderr
    # One line that names the value (argparse's usage lines come before it).
    assert named in result.stderr.strip().splitlines()[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists()


def test_images_are_tagged_as_the_compiled_yaml_names_them():
    listed = subprocess.run(
        [*CLI, "images", "list", "--registry", "registry.example.com/ml"],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    ).stdout  # fmt: skip
    for name in ("runtime", "trainer", "trainer-gpu", "seldon", "mlserver"):
        assert image(f"kfp-pachyderm-{name}", "registry.example.com/ml") in listed
    component = (REPO_ROOT / "components/commit_data/component.yaml").read_text()
    assert f"image: {image('kfp-pachyderm-runtime')}" in component


def run_in(tag: str, *command: str) -> str:
    """What ``command`` prints in a new container of ``tag`` (removed afterwards)."""
    done = podman("run", "--rm", "--network", "none", tag, *command, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_every_image_builds_here_and_what_it_carries_imports():
    built = build_test_images()
    assert set(built) == {"runtime", "trainer", "seldon", "mlserver"}
    runtime, trainer = built["runtime"].tag, built["trainer"].tag
    # The library from its wheel, as uid 1000: every module imports but those that run only in
    # a trainer or MLServer image, which need NumPy (the train extra) and nothing else missing.
    out = run_in(
        runtime, "python", "-c",
        "import json, os, pkgutil, importlib, kfp_pachyderm as k\n"
        "missing = {}\n"
        "for m in pkgutil.walk_packages(k.__path__, 'kfp_pachyderm.'):\n"
        "    if m.name.endswith('__main__'): continue\n"
        "    try: importlib.import_module(m.name)\n"
        "    except ImportError as e: missing[m.name] = e.name\n"
        "print(json.dumps([os.getuid(), k.__file__, os.environ['KFP_PACHYDERM_IMAGE'], missing]))",
    )  # fmt: skip
    uid, where, recorded, missing = json.loads(out)
    assert uid == 1000 and where.startswith("/opt/venv/") and recorded == runtime
    assert set(missing.values()) <= {"numpy", "tensorflow", "keras", "sklearn"}, missing
    assert all(m.startswith(SERVING_OR_TRAINING) for m in missing), missing
    out = run_in(trainer, "python", "-c", "import tensorflow, kfp_pachyderm.trainer.__main__, "
                 "kfp_pachyderm.summarizer.model; print(tensorflow.__version__)")  # fmt: skip
    assert out.strip() == pins(REPO_ROOT / "images/trainer/requirements.lock")["tensorflow-cpu"]
    assert "usage" in run_in(built["seldon"].tag, "seldon-core-microservice", "--help").lower()
    assert "1.7.1" in run_in(built["mlserver"].tag, "mlserver", "--version")


@pytest.mark.slow
def test_a_build_without_the_layer_cache_gives_the_same_image():
    first = build_test_images()["runtime"]
    settings = BuildSettings(
        source=REPO_ROOT,
        registry=TEST_REGISTRY,
        base=DEBIAN_BASE,
        cache=default_cache(),
        no_cache=True,
    )
    (again,) = build_images(image_sources(REPO_ROOT, ["runtime"]), settings)
    assert again.image_id == first.image_id


@pytest.mark.slow
def test_the_gpu_image_builds_on_a_base_with_tensorflow(tmp_path: Path):
    """trainer-gpu's CUDA base cannot be pulled here. In its place: the CPU trainer image as
    root, a base that has TensorFlow 2.21 on its python3 as the CUDA one has. The Dockerfile
    parses, takes that base, installs its lock (everything TensorFlow needs but TensorFlow) and
    the library, and ``pip check`` finds TensorFlow's requirements met."""
    trainer = build_test_images()["trainer"].tag
    (tmp_path / "Containerfile").write_text(f"FROM {trainer}\nUSER root\n")
    stand_in = f"{TEST_REGISTRY}/tensorflow-stand-in:2.21"
    podman("build", "--quiet", "-t", stand_in, str(tmp_path))
    settings = BuildSettings(
        source=REPO_ROOT, registry=TEST_REGISTRY, base=stand_in, cache=default_cache()
    )
    (gpu,) = build_images(image_sources(REPO_ROOT, ["trainer-gpu"]), settings)
    imports = "import os, sklearn, tensorflow, kfp_pachyderm.trainer.model"
    out = run_in(gpu.tag, "python3", "-c", f"{imports}; print(os.environ['KFP_PACHYDERM_IMAGE'])")
    assert out.strip() == image("kfp-pachyderm-trainer-gpu", TEST_REGISTRY)


@pytest.mark.slow
def test_images_build_push_tags_and_pushes_as_the_yaml_names_them(plain):
    """The documented command, for a loopback registry: the image is pushed under the tag the
    YAML compiled for that registry names, and the pushed digest is the one it prints."""
    from .registry import skopeo_inspect

    registry = f"{plain.host}/ml"
    build_test_images()  # the layers are cached; the command builds the same image again
    result = subprocess.run(
        [*CLI, "images", "build", "--only", "runtime", "--debian-base", "--registry", registry,
         "--push", "--no-tls-verify"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    tag = image("kfp-pachyderm-runtime", registry)
    [pushed] = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("pushed")]
    assert pushed.startswith(f"{tag}@sha256:")
    remote = skopeo_inspect(tag)
    assert remote["Digest"] == pushed.split("@", 1)[1]
    assert f"KFP_PACHYDERM_IMAGE={tag}" in remote["Env"]
    # The same image pushed again (as a rebuild of the same checkout is, see above) has the
    # same digest: podman compresses its layers the same way each time.
    again = f"{plain.host}/again/kfp-pachyderm-runtime:1"
    podman("tag", tag, again)
    assert push_image(again, tls_verify=False) == remote["Digest"]
