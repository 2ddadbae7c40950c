"""Image builds: how long each image under images/ takes to build with podman, cold (no layer
cache, the wheelhouse already made) and with podman's layer cache, and how large it is, against
the same run's baseline: installing the same wheelhouse into a virtualenv on the host, which is
the work a build cannot avoid. Also the one-off costs: the Debian base (mmdebstrap + import) and
each wheelhouse (``pip wheel`` of the lock, from pip's cache when it has the files).

One JSON line; sizes in MB, times in seconds.

    .venv/bin/python bench/bench_images.py            # every image but the GPU one
    BENCH_IMAGES=runtime .venv/bin/python bench/bench_images.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT, timed

sys.path.insert(0, str(REPO_ROOT))

from kfp_pachyderm.imagebuild import (  # noqa: E402
    DEBIAN_BASE,
    BuildSettings,
    build_images,
    debian_base,
    default_cache,
    image_sources,
    library_wheel,
    wheelhouse,
)

NAMES = os.environ.get("BENCH_IMAGES", "runtime,trainer,seldon,mlserver").split(",")
REGISTRY = "localhost/kfp-pachyderm-bench"


def host_install(wheels: Path, library: Path | None) -> float:
    """Seconds to make a virtualenv on the host and install ``wheels`` (and the library) into it."""
    with tempfile.TemporaryDirectory() as scratch:
        venv = Path(scratch) / "venv"

        def install() -> None:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            files = [str(p) for p in wheels.glob("*.whl")]
            if library:
                files += [str(p) for p in library.glob("*.whl")]
            subprocess.run(
                [str(venv / "bin/pip"), "install", "-q", "--no-index", "--no-deps", *files],
                check=True,
            )

        return timed(install)


def main() -> None:
    cache = default_cache()
    figures: dict[str, object] = {}
    subprocess.run(["podman", "rmi", "-f", DEBIAN_BASE], capture_output=True)
    tarball = cache / "base-bookworm-python3.11.tar"
    base_cold = timed(lambda: (tarball.unlink(missing_ok=True), debian_base(cache)))
    figures["base_s"] = round(base_cold, 1)
    sources = image_sources(REPO_ROOT, NAMES)
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "cache"
        for source in sources:
            figures[f"{source.short_name}_wheelhouse_s"] = round(
                timed(lambda s=source: wheelhouse(s.lock, fresh)), 1
            )
    settings = BuildSettings(source=REPO_ROOT, registry=REGISTRY, base=DEBIAN_BASE, cache=cache)
    with tempfile.TemporaryDirectory() as scratch:
        library = library_wheel(REPO_ROOT, Path(scratch) / "dist").parent
        for source in sources:
            started = time.monotonic()
            (cold,) = build_images([source], dataclasses.replace(settings, no_cache=True))
            cold_s = time.monotonic() - started
            (cached,) = build_images([source], settings)
            baseline = host_install(
                wheelhouse(source.lock, cache), library if source.carries_library else None
            )
            figures[source.short_name] = {
                "cold_s": round(cold_s, 1),
                "cached_s": round(cached.seconds, 1),
                "host_install_s": round(baseline, 1),
                "cold_vs_host_install": round(cold_s / baseline, 2),
                "size_mb": round(cold.size_bytes / 1e6),
                "reproducible": cold.image_id == cached.image_id,
            }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
