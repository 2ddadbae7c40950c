"""Serving servers in their own virtualenvs: a cached virtualenv per set of requirements, and
the real ``mlserver start`` as a child process.

A virtualenv lives in ``~/.cache/kfp-pachyderm/`` (or ``$XDG_CACHE_HOME``), named by a hash of
its requirements and the Python version, and is reused across sessions; creating one downloads
TensorFlow and takes a few minutes. The tests never create one: ``bash scripts/dev.sh test``
does, before pytest starts, when the run includes the slow tests (it runs
``python -m tests.serving_venv``), and :func:`serving_venv` only finds it; a missing one is a
failure under CI and a skip elsewhere.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .conftest import REPO_ROOT, free_port, missing_prerequisite

# KServe's storage initializer, next to the MLServer image's pins in the mlserver virtualenv.
KSERVE_STORAGE = "kserve-storage==0.21.0"


def seldon_requirements() -> list[str]:
    """The Seldon serving image's pins (images/seldon/requirements.txt, without comments)."""
    text = (REPO_ROOT / "images/seldon/requirements.txt").read_text()
    pins = [line.strip() for line in text.splitlines()]
    return [pin for pin in pins if pin and not pin.startswith("#")]


def mlserver_requirements() -> list[str]:
    """The MLServer image's pins plus KServe's storage initializer."""
    from kfp_pachyderm.mlserver.settings import SERVING_REQUIREMENTS

    return [*SERVING_REQUIREMENTS, KSERVE_STORAGE]


# The serving virtualenvs the tests use, by name: what each has installed.
SERVING_VENVS = {"seldon": seldon_requirements, "mlserver": mlserver_requirements}
# Read once, when the tests start: a test that points HOME at a scratch folder still finds the
# virtualenvs scripts/dev.sh made.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kfp-pachyderm"


def venv_path(name: str) -> Path:
    """Where serving virtualenv ``name`` lives: named by a hash of its requirements and of this
    Python's version (so the tests' interpreter must be the one that creates it)."""
    pins = "\n".join(SERVING_VENVS[name]())
    key = hashlib.sha256(f"{pins}\n{sys.version}".encode()).hexdigest()[:12]
    return CACHE / f"{name}-venv-{key}"


def serving_venv(name: str) -> Path:
    """Serving virtualenv ``name`` (a key of :data:`SERVING_VENVS`), which ``bash
    scripts/dev.sh test`` created; a failure under CI and a skip elsewhere when it is
    missing."""
    venv = venv_path(name)
    if not (venv / ".complete").exists():
        missing_prerequisite(
            f"the {name} serving virtualenv {venv} is missing: bash scripts/dev.sh test creates "
            f"it (or: .venv/bin/python -m tests.serving_venv {name})"
        )
    return venv


def create_serving_venv(name: str) -> Path:
    """Create serving virtualenv ``name`` with its requirements unless it is complete (under a
    lock, so parallel sessions wait for one creation); ``scripts/dev.sh`` runs this."""
    requirements = SERVING_VENVS[name]()
    venv = venv_path(name)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(f"{venv.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        print(f"creating the {name} serving virtualenv {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "install", "--disable-pip-version-check",
             "-q", *requirements],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if install.returncode != 0:
            raise SystemExit(
                f"installing {name}'s serving requirements ({', '.join(requirements)}) "
                f"failed:\n{install.stderr[-4000:]}"
            )
        print(f"created {venv} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        (venv / ".complete").write_text("")
    return venv


class MLServerProcess:
    """``mlserver start <model_dir>`` from ``venv`` as a child process in its own process
    group, on free ports; a context manager that waits until model ``name`` is ready and kills
    the server on exit. Its working directory (``work_dir``, default ``<model_dir>-mlserver``)
    holds its log, so a failure can show it, and whatever MLServer writes there (.metrics)."""

    def __init__(
        self,
        venv: Path,
        model_dir: Path,
        name: str,
        work_dir: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 180,
    ):
        self.venv, self.model_dir, self.name, self.timeout = venv, model_dir, name, timeout
        self.work_dir = work_dir or model_dir.with_name(f"{model_dir.name}-mlserver")
        self.log = self.work_dir / "mlserver.log"
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.work_dir),
            "PYTHONDONTWRITEBYTECODE": "1",  # nothing written into the model directory
            "MLSERVER_HTTP_PORT": str(self.http_port),
            "MLSERVER_GRPC_PORT": str(self.grpc_port),
            "MLSERVER_METRICS_PORT": str(self.metrics_port),
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    def url(self, path: str) -> str:
        """The server's HTTP address of ``path`` (``/v2/...``)."""
        return f"http://127.0.0.1:{self.http_port}{path}"

    def log_text(self) -> str:
        """Everything the server wrote so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> MLServerProcess:
        """Start the server and wait until the model is ready, or fail the test with its log."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin/mlserver"), "start", str(self.model_dir)],
                cwd=self.work_dir, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # A refused connection and a slow first answer (a read timeout while the model loads)
        # both mean "not yet"; no probe runs past the deadline.
        ready = self.url(f"/v2/models/{self.name}/ready")
        deadline = time.monotonic() + self.timeout
        last = "no answer"
        while (remaining := deadline - time.monotonic()) > 0 and self.proc.poll() is None:
            try:
                answer = requests.get(ready, timeout=min(5, remaining))
                if answer.status_code == 200:
                    return self
                last = f"HTTP {answer.status_code}"
            except (requests.ConnectionError, requests.Timeout) as err:
                last = f"{type(err).__name__}: {err}"
            time.sleep(0.5)
        if self.proc.poll() is not None:
            last = f"exited with {self.proc.returncode}"
        self.stop()
        pytest.fail(
            f"mlserver did not get {self.name} ready in {self.timeout} s ({last}):\n"
            f"{self.log_text()[-6000:]}"
        )

    def stop(self) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass

    def __enter__(self) -> MLServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    # python -m tests.serving_venv [NAME ...]: create the named serving virtualenvs (all when
    # none is named) that are missing.
    for venv_name in sys.argv[1:] or SERVING_VENVS:
        create_serving_venv(venv_name)
