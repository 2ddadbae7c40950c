"""Package discovery; everything else about the distribution is in pyproject.toml.

``[tool.setuptools.package-dir]`` ships ``components/`` and ``pipelines/`` as
``kfp_pachyderm.components`` and ``kfp_pachyderm.pipelines``. ``[tool.setuptools.packages.find]``
cannot name the packages under such a mapped folder, so they are found here: every folder with an
``__init__.py`` under ``kfp_pachyderm/`` or under a mapped folder is a package, and a new one is
in the wheel without a list to keep.
"""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PACKAGE = "kfp_pachyderm"


def packages() -> list[str]:
    """``kfp_pachyderm`` and its subpackages, plus each mapped folder's packages under the
    name it is mapped to."""
    config = tomllib.loads((HERE / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = find_packages(str(HERE), include=[PACKAGE, f"{PACKAGE}.*"])
    for name, folder in config.get("package-dir", {}).items():
        found += [name, *(f"{name}.{sub}" for sub in find_packages(str(HERE / folder)))]
    return sorted(set(found))


setup(packages=packages())
