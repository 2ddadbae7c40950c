"""components/ and pipelines/ import as kfp_pachyderm.components and .pipelines from a wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO_ROOT


def test_wheel_maps_components_and_pipelines_into_the_package(tmp_path: Path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("kfp_pachyderm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kfp_pachyderm/components/__init__.py" in names
    assert "kfp_pachyderm/pipelines/__init__.py" in names
    assert not any(n.startswith(("components/", "pipelines/", "tests/")) for n in names)
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(unpacked)!r}); "
            "import kfp_pachyderm.components as c, kfp_pachyderm.pipelines as p; "
            "print(c.__file__); print(p.__file__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert all(line.startswith(str(unpacked)) for line in out.stdout.split())


def test_editable_install_maps_them_too():
    import kfp_pachyderm.components
    import kfp_pachyderm.pipelines

    assert Path(kfp_pachyderm.components.__file__).parent == REPO_ROOT / "components"
    assert Path(kfp_pachyderm.pipelines.__file__).parent == REPO_ROOT / "pipelines"
