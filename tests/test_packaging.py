"""The wheel is the product: it holds every package and file of the checkout, and installed with
its declared dependencies into a fresh virtualenv it works from outside the checkout.

The fast lane checks the wheel's file list against the checkout's package folders and imports
every module from the unpacked wheel; the slow lane installs the wheel with its dependencies
into a fresh virtualenv and imports, compiles and runs a pipeline there. The wheel is built from
a copy of the checkout's build inputs, so a stale ``build/`` folder in the checkout (setuptools
puts all of ``build/lib`` into a wheel built in place) cannot hide a missing package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from kfp_pachyderm.imagebuild.wheelhouse import copy_build_inputs

from .conftest import REPO_ROOT

# Where each source folder's packages go in the wheel (DESIGN.md, "Layout").
PACKAGE_FOLDERS = {
    "kfp_pachyderm": "kfp_pachyderm",
    "components": "kfp_pachyderm/components",
    "pipelines": "kfp_pachyderm/pipelines",
}
SMOKE = Path(__file__).with_name("wheel_smoke.py")


def copy_sources(dest: Path) -> Path:
    """The checkout's build inputs, without caches, copied to ``dest`` (as the images' wheel
    is built)."""
    return copy_build_inputs(REPO_ROOT, dest)


def build_wheel(python: str, sources: Path, out: Path, *, isolated: bool) -> Path:
    """``pip wheel --no-deps`` of ``sources`` into ``out``, with ``python``'s pip."""
    isolation = [] if isolated else ["--no-build-isolation"]
    command = [python, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(out)]
    run(*command, str(sources), cwd=out.parent)
    (wheel,) = out.glob("kfp_pachyderm-*.whl")
    return wheel


def run(*command: str, cwd: Path) -> str:
    """Run ``command`` in ``cwd`` with :func:`clean_env`; its stdout. Its output (pip warns
    about every missing local index entry) is shown only when it fails."""
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would put a source tree on a Python's path."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def package_folders() -> dict[Path, PurePosixPath]:
    """Every package folder of the checkout (a folder with an ``__init__.py``) and where it
    belongs in the wheel."""
    found = {}
    for folder, target in PACKAGE_FOLDERS.items():
        for init in sorted((REPO_ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(REPO_ROOT / folder).as_posix()
            found[init.parent] = PurePosixPath(target, relative)
    return found


def shipped_files() -> set[str]:
    """What the wheel must hold under ``kfp_pachyderm/``: every file of every package folder
    (modules, component.yaml, README.md, compiled pipelines, sources a module reads)."""
    return {
        str(target / path.name)
        for folder, target in package_folders().items()
        for path in folder.iterdir()
        if path.is_file() and path.suffix != ".pyc" and not path.name.startswith(".")
    }


@pytest.fixture(scope="module")
def checkout_wheel(tmp_path_factory) -> Path:
    """The wheel of the checkout, built with this environment's setuptools (no network)."""
    tmp = tmp_path_factory.mktemp("wheel")
    sources = copy_sources(tmp / "src")
    return build_wheel(sys.executable, sources, tmp / "dist", isolated=False)


def test_every_folder_of_modules_is_a_package():
    """Discovery finds folders with an ``__init__.py``; a folder of modules without one would be
    left out of the wheel."""
    for folder in PACKAGE_FOLDERS:
        for module in (REPO_ROOT / folder).rglob("*.py"):
            assert (module.parent / "__init__.py").is_file(), f"{module.parent} has no __init__.py"


@pytest.mark.slow
def test_wheel_holds_every_package_and_file_of_the_checkout(checkout_wheel: Path):
    names = set(zipfile.ZipFile(checkout_wheel).namelist())
    folders = package_folders()
    assert {"kfp_pachyderm", "kfp_pachyderm/components", "kfp_pachyderm/pipelines"} <= {
        str(target) for target in folders.values()
    }
    missing_packages = sorted(
        f"{folder.relative_to(REPO_ROOT)} -> {str(target).replace('/', '.')}"
        for folder, target in folders.items()
        if f"{target}/__init__.py" not in names
    )
    assert not missing_packages, f"packages missing from the wheel: {missing_packages}"
    library = {n for n in names if n.startswith("kfp_pachyderm/")}
    expected = shipped_files()
    assert sorted(expected - library) == [], "files missing from the wheel"
    assert sorted(library - expected) == [], "files in the wheel that the checkout lacks"
    dist_info = f"kfp_pachyderm-{wheel_version(checkout_wheel)}.dist-info"
    others = {n.split("/")[0] for n in names - library}
    assert others == {dist_info}, f"stray top-level entries {others - {dist_info}}"
    entry_points = zipfile.ZipFile(checkout_wheel).read(f"{dist_info}/entry_points.txt")
    assert b"kfp-pachyderm = kfp_pachyderm.cli:main" in entry_points


def run_smoke(
    python: str, check: str, prefix: Path, tmp: Path, path_first: Path | None = None, **env: str
) -> dict:
    """Run ``wheel_smoke.py <check>`` with ``python -I`` from a copy outside the checkout, in a
    folder outside it (with ``path_first`` first on ``sys.path``); its JSON report."""
    script = tmp / "wheel_smoke.py"
    shutil.copyfile(SMOKE, script)
    work = tmp / f"work-{check}"
    work.mkdir()
    command = [python, "-I", str(script), check, "--checkout", str(REPO_ROOT)]
    command += ["--path-first", str(path_first)] if path_first else []
    done = subprocess.run(
        [*command, "--prefix", str(prefix), "--work", str(work)],
        cwd=work,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"wheel_smoke.py {check} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_imports_everything(report: dict, components: set[str]) -> None:
    assert report["failed"] == {}, "\n".join(report["failed"].values())
    assert report["elsewhere"] == [], "modules loaded from outside the wheel (missing from it?)"
    assert set(report["components"]) == components
    packages = {str(t).replace("/", ".") for t in package_folders().values()}
    not_found = packages - set(report["imported"]) - set(report["skipped"])
    assert not not_found, f"packages of the checkout not imported from the wheel: {not_found}"


def checkout_components() -> set[str]:
    return {p.parent.name for p in (REPO_ROOT / "components").glob("*/component.py")}


@pytest.mark.slow
def test_unpacked_wheel_imports_every_module(checkout_wheel: Path, tmp_path: Path):
    """Fast lane: every module of the wheel imports from the unpacked wheel (this environment's
    dependencies, no source tree on the path)."""
    site = tmp_path / "site"
    zipfile.ZipFile(checkout_wheel).extractall(site)
    report = run_smoke(sys.executable, "imports", site, tmp_path, path_first=site)
    assert_imports_everything(report, checkout_components())


def test_editable_install_maps_them_too():
    import kfp_pachyderm.components
    import kfp_pachyderm.pipelines

    assert Path(kfp_pachyderm.components.__file__).parent == REPO_ROOT / "components"
    assert Path(kfp_pachyderm.pipelines.__file__).parent == REPO_ROOT / "pipelines"


def without_sdk_version(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("sdkVersion:")]


@dataclass(frozen=True)
class FreshInstall:
    """A fresh virtualenv holding the wheel and its declared dependencies, nothing else."""

    venv: Path
    wheel: Path
    site: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def command(self) -> str:
        return str(self.venv / "bin" / "kfp-pachyderm")

    @property
    def package(self) -> Path:
        return self.site / "kfp_pachyderm"


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory) -> FreshInstall:
    """Build the wheel with the fresh virtualenv's pip (an isolated build, as a user's), and
    install it with its declared dependencies from the package index."""
    tmp = tmp_path_factory.mktemp("fresh")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", str(venv), cwd=tmp)
    python = str(venv / "bin" / "python")
    wheel = build_wheel(python, copy_sources(tmp / "src"), tmp / "dist", isolated=True)
    run(python, "-m", "pip", "install", "-q", str(wheel), cwd=tmp)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(run(python, "-I", "-c", purelib, cwd=tmp).strip())
    return FreshInstall(venv, wheel, site)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fresh_install_imports_every_module(fresh_install: FreshInstall, tmp_path: Path):
    report = run_smoke(fresh_install.python, "imports", fresh_install.site, tmp_path)
    assert report["version"] == wheel_version(fresh_install.wheel)
    assert_imports_everything(report, checkout_components())


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fresh_install_compiles_what_it_ships(fresh_install: FreshInstall, tmp_path: Path):
    """``kfp-pachyderm compile`` of the installed package gives exactly the component and
    pipeline YAML the wheel ships (ignoring the SDK version line)."""
    compiled = tmp_path / "compiled"
    run(fresh_install.command, "compile", "--out-dir", str(compiled), cwd=tmp_path)
    package = fresh_install.package
    shipped = {
        p.relative_to(package)
        for p in [*package.glob("components/*/component.yaml"), *package.glob("pipelines/*.yaml")]
    }
    assert {p.parts[1] for p in shipped if p.parts[0] == "components"} == checkout_components()
    assert {p.relative_to(compiled) for p in compiled.rglob("*.yaml")} == shipped
    for path in sorted(shipped):
        assert without_sdk_version((compiled / path).read_text()) == without_sdk_version(
            (package / path).read_text()
        ), f"compiling from the wheel does not give the {path} it ships"


@contextmanager
def local_server(install: FreshInstall, folder: Path) -> Iterator[str]:
    """``kfp-pachyderm local serve --create`` of the installed package on a free port; its
    address."""
    address_file = folder / "address"
    command = [install.command, "local", "serve", "--port", "0", "--create"]
    command += ["--data-dir", str(folder / "pfs"), "--address-file", str(address_file)]
    with (folder / "server.log").open("w") as log:
        proc = subprocess.Popen(
            command, cwd=folder, env=clean_env(), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while not (address_file.exists() and address_file.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"local server did not start: see {log.name}")
                time.sleep(0.1)
            yield address_file.read_text().strip()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fresh_install_runs_a_pfs_step_pipeline(fresh_install: FreshInstall, tmp_path: Path):
    """Under kfp.local (SubprocessRunner, use_venv=False) against the installed local server:
    the shipped commit_data component commits a folder and a ``pfs_step`` upper-cases it into a
    new commit, run by the fresh virtualenv's Python from its installed library."""
    with local_server(fresh_install, tmp_path) as address:
        result = run_smoke(
            fresh_install.python, "pipeline", fresh_install.site, tmp_path, PACHD_ADDRESS=address
        )
    assert result["files"] == {"a.txt": "HELLO", "sub/b.txt": "WHEEL"}
    assert result["step"] == "shout"
    assert result["inputs"] == [["raw", result["raw_head"]]]
    assert Path(result["ran_with"]["library"]).is_relative_to(fresh_install.package)
    assert Path(result["ran_with"]["python"]).parent == fresh_install.venv / "bin"
    assert result["elsewhere"] == []
