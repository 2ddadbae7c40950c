"""What hardware a training step runs on, and the settings that make it fast there.

On a GPU with tensor cores (compute capability 7.0 or newer) training uses mixed precision
(``mixed_float16``); on any GPU the train step is compiled with XLA. On a CPU the same code runs
unchanged in float32. The report goes into the model's metrics and provenance, so a model says
which GPU model and count, driver and TensorFlow build made it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field

from kfp_pachyderm.kfp.pod import EXPECTED_GPUS_ENV

log = logging.getLogger(__name__)

MIXED_PRECISION_MIN_CAPABILITY = (7, 0)


class NoGpuError(RuntimeError):
    """GPUs were requested for this step, but TensorFlow sees none."""


@dataclass
class DeviceReport:
    """The devices TensorFlow sees and the settings chosen for them."""

    gpus: list[dict] = field(default_factory=list)
    driver: str = ""
    tensorflow: str = ""
    cuda_build: bool = False
    cuda_version: str = ""
    cudnn_version: str = ""
    mixed_precision: bool = False
    xla: bool = False

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    def as_dict(self) -> dict:
        return {**asdict(self), "gpu_count": self.gpu_count}


def _driver_version() -> str:
    if not shutil.which("nvidia-smi"):
        return ""
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout else ""


def inspect_devices() -> DeviceReport:
    """The GPUs TensorFlow sees (name, compute capability), the driver and the TF build."""
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    report = DeviceReport(
        tensorflow=tf.__version__,
        cuda_build=bool(build.get("is_cuda_build")),
        cuda_version=str(build.get("cuda_version", "")),
        cudnn_version=str(build.get("cudnn_version", "")),
    )
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        report.gpus.append(
            {
                "name": details.get("device_name", gpu.name),
                "compute_capability": list(details.get("compute_capability", ())),
            }
        )
    if report.gpus:
        report.driver = _driver_version()
    return report


def expected_gpus() -> int:
    """GPUs the pipeline asked for (set by :func:`kfp_pachyderm.with_gpu`)."""
    value = os.environ.get(EXPECTED_GPUS_ENV, "0")
    try:
        return int(value)
    except ValueError:
        raise NoGpuError(f"{EXPECTED_GPUS_ENV}={value!r} is not a whole number") from None


def prepare(in_cluster: bool) -> DeviceReport:
    """Inspect the devices, check requested GPUs are there, and choose precision and XLA.

    In a cluster, a GPU request that TensorFlow cannot see fails at once (the node has no GPU,
    or the image has no CUDA); locally it is a warning and the step trains on the CPU.
    """
    import keras

    report = inspect_devices()
    wanted = expected_gpus()
    if wanted and report.gpu_count < wanted:
        message = f"{wanted} GPU(s) requested but TensorFlow sees {report.gpu_count}: " + (
            "the node has no GPU or the image has no CUDA build of TensorFlow "
            f"(cuda build: {report.cuda_build}); use a GPU node and images/trainer-gpu"
            if in_cluster
            else "training on the CPU instead"
        )
        if in_cluster:
            raise NoGpuError(message)
        log.warning(message)
    if report.gpus:
        capability = tuple(report.gpus[0]["compute_capability"] or (0, 0))
        report.mixed_precision = capability >= MIXED_PRECISION_MIN_CAPABILITY
        report.xla = True
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if report.mixed_precision else "float32"
    )
    return report
