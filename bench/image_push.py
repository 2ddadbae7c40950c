"""A serving image's build and push against the transfer floor, ``skopeo copy``, in one run:
what bench_seldon and bench_serving both measure, for their own build context.

The model's context is appended to a base image in registry A (one incompressible layer of
``base_mb``) and pushed to a fresh registry B: base resolution, the reproducible layer (tar and
gzip), copying the base's blobs across registries, uploading the layer and config, pushing the
manifest. The floor is ``skopeo copy`` of the finished image from A to another fresh registry:
the same bytes between the same kind of registries, with nothing to build. Each side runs
``runs`` times on fresh registries, alternating; the rerun (everything already there) sends
nothing. Registries are Debian's ``docker-registry`` on loopback.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

TARGET_RATIO = 1.5
COMMIT = "0123456789ab4def0123456789abcdef"


def measure_push(
    root: Path, model_dir: Path, write_context: Callable[..., Path], base_mb: float, runs: int
) -> dict:
    """Figures of pushing the image whose context ``write_context(dest, model_dir, provenance,
    base, labels)`` writes, against ``skopeo copy`` of the same image; ``root`` is scratch."""
    from kfp_pachyderm.modelimage.build import push_model_image
    from kfp_pachyderm.oci.append import resolve_base
    from kfp_pachyderm.oci.labels import image_labels
    from kfp_pachyderm.oci.media import DOCKER
    from kfp_pachyderm.oci.reference import ImageRef
    from kfp_pachyderm.oci.registry import RegistryClient
    from kfp_pachyderm.pfs.refs import CommitRef
    from tests.registry import Registry, ensure_tools, push_synthetic, synthetic_image

    ensure_tools()
    model = CommitRef("models", commit=COMMIT, path="/model")
    created = datetime(2026, 1, 1, tzinfo=UTC)
    with Registry(root / "a") as source:
        a = RegistryClient(source.host, plain_http=True)
        push_synthetic(
            a, "base/image", "1", synthetic_image(DOCKER, layer_bytes=int(base_mb * (1 << 20)))
        )
        base_ref = ImageRef.parse(f"{source.host}/base/image:1")
        base = resolve_base(a, base_ref)
        context = write_context(
            root / "context",
            model_dir,
            {"model": {"uri": model.uri, "commit": COMMIT}},
            base.pinned,
            image_labels(model, base, "2026-01-01T00:00:00Z"),
        )
        staging = root / "staging"
        staging.mkdir()
        staged = push_model_image(
            context, model, base, a, ImageRef.parse(f"{source.host}/staged/model"), a,
            created, staging,
        )  # fmt: skip
        layer_mb = (staging / "layer.tar.gz").stat().st_size / (1 << 20)

        def floor(run: int) -> float:
            with Registry(root / f"floor-{run}") as dest:
                started = time.perf_counter()
                subprocess.run(
                    ["skopeo", "copy", "--insecure-policy", "--src-tls-verify=false",
                     "--dest-tls-verify=false", f"docker://{source.host}/staged/model:{COMMIT}",
                     f"docker://{dest.host}/models/model:{COMMIT}"],
                    check=True, capture_output=True,
                )  # fmt: skip
                return time.perf_counter() - started

        def ours(run: int) -> tuple[float, float]:
            with Registry(root / f"ours-{run}") as dest:
                target = ImageRef.parse(f"{dest.host}/models/model")
                work = root / f"work-{run}"
                work.mkdir()
                with RegistryClient(dest.host, plain_http=True) as b:
                    started = time.perf_counter()
                    resolved = resolve_base(a, base_ref)
                    first = push_model_image(context, model, resolved, a, target, b, created, work)
                    build_s = time.perf_counter() - started
                    started = time.perf_counter()
                    again = push_model_image(context, model, resolved, a, target, b, created, work)
                    rerun_s = time.perf_counter() - started
            assert first.digest == again.digest == staged.digest, "a reproducible image"
            assert again.sent_nothing, "a rerun sends nothing"
            return build_s, rerun_s

        floors, builds, reruns = [], [], []
        for run in range(runs):
            floors.append(floor(run))
            build_s, rerun_s = ours(run)
            builds.append(build_s)
            reruns.append(rerun_s)
    build_median, floor_median = statistics.median(builds), statistics.median(floors)
    return {
        "base_mb": base_mb,
        "layer_mb": round(layer_mb, 1),
        "runs": runs,
        "build_push_s": round(build_median, 3),
        "skopeo_copy_s": round(floor_median, 3),
        "ratio": round(build_median / floor_median, 2),
        "target_ratio": TARGET_RATIO,
        "rerun_s": round(statistics.median(reruns), 3),
        "rerun_sent_nothing": True,
        "build_push_runs_s": [round(t, 3) for t in builds],
        "skopeo_copy_runs_s": [round(t, 3) for t in floors],
        "digest": staged.digest,
    }
