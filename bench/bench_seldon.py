"""Seldon image build and push against the transfer floor, ``skopeo copy``, in the same run.

A real SavedModel of about 30 MB (``BENCH_SELDON_MODEL_MB``) is appended to a base image in
registry A (one ~16 MB incompressible layer, ``BENCH_SELDON_BASE_MB``) and pushed to a fresh
registry B: base resolution, the reproducible layer (tar and gzip), copying the base's blobs
across registries, uploading the layer and config, pushing the manifest. The floor is
``skopeo copy`` of the finished image from A to another fresh registry: the same bytes between
the same kind of registries, with nothing to build. Each side runs ``BENCH_SELDON_RUNS`` times
(default 3) on fresh registries, alternating; the medians are compared (target: at most 1.5x).

Also measured: the rerun (everything already there: nothing is sent), and the whole step with
the local Pachyderm server (read the model commit, commit the build context, build, push).
Registries are Debian's ``docker-registry`` on loopback (installed with apt-get if missing).

    .venv/bin/python bench/bench_seldon.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))

MODEL_MB = float(os.environ.get("BENCH_SELDON_MODEL_MB", "30"))
BASE_MB = float(os.environ.get("BENCH_SELDON_BASE_MB", "16"))
RUNS = int(os.environ.get("BENCH_SELDON_RUNS", "3"))
TARGET_RATIO = 1.5


def export_model(directory: Path) -> Path:
    """A SavedModel taking the trainer's 28x28 ``image`` input, with ~MODEL_MB of weights."""
    import keras

    # Keras 3's export checkpoints every weight twice (``variables`` and ``_all_variables``).
    units = int(MODEL_MB * (1 << 20) / 8 / (28 * 28 + 11))
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="image"),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.export(str(directory), format="tf_saved_model", verbose=False)
    return directory


def tree_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / (1 << 20)


def main() -> None:
    from pachyderm_sdk import Client

    from kfp_pachyderm.local.server import LocalPachyderm
    from kfp_pachyderm.oci.append import resolve_base
    from kfp_pachyderm.oci.labels import image_labels
    from kfp_pachyderm.oci.media import DOCKER
    from kfp_pachyderm.oci.reference import ImageRef
    from kfp_pachyderm.oci.registry import RegistryClient
    from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
    from kfp_pachyderm.pfs.provenance import ProvenanceRecord
    from kfp_pachyderm.pfs.refs import CommitRef
    from kfp_pachyderm.pfs.transfer import put_tree
    from kfp_pachyderm.seldon.build import build_seldon_image, push_model_image
    from kfp_pachyderm.seldon.context import write_build_context
    from tests.registry import Registry, ensure_tools, push_synthetic, synthetic_image

    ensure_tools()
    commit = "0123456789ab4def0123456789abcdef"
    model = CommitRef("models", commit=commit, path="/model")
    created = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="bench-seldon-") as tmp:
        root = Path(tmp)
        model_dir = export_model(root / "saved_model")
        model_mb = tree_mb(model_dir)
        with Registry(root / "a") as source:
            a = RegistryClient(source.host, plain_http=True)
            base_image = synthetic_image(DOCKER, layer_bytes=int(BASE_MB * (1 << 20)))
            push_synthetic(a, "base/seldon", "1", base_image)
            base_ref = ImageRef.parse(f"{source.host}/base/seldon:1")
            base = resolve_base(a, base_ref)
            context = write_build_context(
                root / "context",
                model_dir,
                {"model": {"uri": model.uri, "commit": commit}},
                base.pinned,
                image_labels(model, base, "2026-01-01T00:00:00Z"),
            )
            staged = push_model_image(
                context, model, base, a, ImageRef.parse(f"{source.host}/staged/mnist"), a,
                created, root,
            )  # fmt: skip
            layer_mb = (root / "layer.tar.gz").stat().st_size / (1 << 20)

            def floor(run: int) -> float:
                with Registry(root / f"floor-{run}") as dest:
                    started = time.perf_counter()
                    subprocess.run(
                        ["skopeo", "copy", "--insecure-policy", "--src-tls-verify=false",
                         "--dest-tls-verify=false", f"docker://{source.host}/staged/mnist:{commit}",
                         f"docker://{dest.host}/models/mnist:{commit}"],
                        check=True, capture_output=True,
                    )  # fmt: skip
                    return time.perf_counter() - started

            def ours(run: int) -> tuple[float, float, bool, str]:
                with Registry(root / f"ours-{run}") as dest:
                    target = ImageRef.parse(f"{dest.host}/models/mnist")
                    work = root / f"work-{run}"
                    work.mkdir()
                    with RegistryClient(dest.host, plain_http=True) as b:
                        started = time.perf_counter()
                        resolved = resolve_base(a, base_ref)
                        first = push_model_image(
                            context, model, resolved, a, target, b, created, work
                        )
                        build_s = time.perf_counter() - started
                        started = time.perf_counter()
                        again = push_model_image(
                            context, model, resolved, a, target, b, created, work
                        )
                        rerun_s = time.perf_counter() - started
                    assert first.digest == again.digest == staged.digest
                    return build_s, rerun_s, again.sent_nothing, first.digest

            floors, builds, reruns = [], [], []
            for run in range(RUNS):
                floors.append(floor(run))
                build_s, rerun_s, sent_nothing, digest = ours(run)
                builds.append(build_s)
                reruns.append(rerun_s)
                assert sent_nothing

            with LocalPachyderm(root / "pfs") as server, Registry(root / "step") as dest:
                client = Client.from_pachd_address(server.address)
                ensure_repo(client, CommitRef("models"))
                with output_commit(
                    client, CommitRef("models", "master"), provenance=ProvenanceRecord(step="train")
                ) as out:
                    put_tree(client, out.pfs_commit(), model_dir, dest="/model")
                started = time.perf_counter()
                build_seldon_image(
                    client, out.ref, f"{dest.host}/models/mnist", str(base_ref), plain_http=True
                )
                step_s = time.perf_counter() - started

    build_median, floor_median = statistics.median(builds), statistics.median(floors)
    figures = {
        "benchmark": "seldon_image",
        "model_mb": round(model_mb, 1),
        "base_mb": BASE_MB,
        "layer_mb": round(layer_mb, 1),
        "runs": RUNS,
        "build_push_s": round(build_median, 3),
        "skopeo_copy_s": round(floor_median, 3),
        "ratio": round(build_median / floor_median, 2),
        "target_ratio": TARGET_RATIO,
        "rerun_s": round(statistics.median(reruns), 3),
        "rerun_sent_nothing": True,
        "step_with_pachyderm_s": round(step_s, 3),
        "build_push_runs_s": [round(t, 3) for t in builds],
        "skopeo_copy_runs_s": [round(t, 3) for t in floors],
        "digest": digest,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
