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
The push measurement is bench/image_push.py, shared with bench_serving.
Registries are Debian's ``docker-registry`` on loopback (installed with apt-get if missing).

    .venv/bin/python bench/bench_seldon.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT
from image_push import measure_push

sys.path.insert(0, str(REPO_ROOT))

MODEL_MB = float(os.environ.get("BENCH_SELDON_MODEL_MB", "30"))
BASE_MB = float(os.environ.get("BENCH_SELDON_BASE_MB", "16"))
RUNS = int(os.environ.get("BENCH_SELDON_RUNS", "3"))


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
    from kfp_pachyderm.modelimage.build import BuildOptions
    from kfp_pachyderm.pfs.commits import ensure_repo, output_commit
    from kfp_pachyderm.pfs.provenance import ProvenanceRecord
    from kfp_pachyderm.pfs.refs import CommitRef
    from kfp_pachyderm.pfs.transfer import put_tree
    from kfp_pachyderm.seldon.build import build_seldon_image
    from kfp_pachyderm.seldon.context import write_build_context
    from tests.registry import Registry, push_synthetic, synthetic_image

    with tempfile.TemporaryDirectory(prefix="bench-seldon-") as tmp:
        root = Path(tmp)
        model_dir = export_model(root / "saved_model")
        model_mb = tree_mb(model_dir)
        figures = measure_push(root / "push", model_dir, write_build_context, BASE_MB, RUNS)
        with (
            LocalPachyderm(root / "pfs") as server,
            Registry(root / "step-base") as source,
            Registry(root / "step") as dest,
        ):
            from kfp_pachyderm.oci.media import DOCKER
            from kfp_pachyderm.oci.registry import RegistryClient

            base = synthetic_image(DOCKER, layer_bytes=int(BASE_MB * (1 << 20)))
            push_synthetic(RegistryClient(source.host, plain_http=True), "base/seldon", "1", base)
            client = Client.from_pachd_address(server.address)
            ensure_repo(client, CommitRef("models"))
            with output_commit(
                client, CommitRef("models", "master"), provenance=ProvenanceRecord(step="train")
            ) as out:
                put_tree(client, out.pfs_commit(), model_dir, dest="/model")
            started = time.perf_counter()
            build_seldon_image(
                client,
                out.ref,
                f"{dest.host}/models/mnist",
                BuildOptions(base_image=f"{source.host}/base/seldon:1", plain_http=True),
            )
            step_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "benchmark": "seldon_image",
                "model_mb": round(model_mb, 1),
                **figures,
                "step_with_pachyderm_s": round(step_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
