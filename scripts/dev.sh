#!/usr/bin/env bash
# The two set-up commands of the README, on a fresh machine or an existing checkout:
#
#   bash scripts/dev.sh demo        run the main job: the mnist_tfjob pipeline, locally, on the
#                                   embedded local Pachyderm server (extra arguments go to
#                                   `kfp-pachyderm run`, e.g. --param epochs=3)
#   bash scripts/dev.sh test [...]  run the whole test suite (extra arguments go to pytest);
#                                   `bash scripts/dev.sh test -m "not slow"` is the fast lane
#                                   (no whole pipelines, training, serving, image builds or
#                                   kill/restart; a few minutes on two cores)
#   bash scripts/dev.sh lock        re-lock the images' Python dependencies (images/*/requirements.lock)
#
# Each creates .venv in the repository root when missing and installs the package with what
# it needs (again only when pyproject.toml changed). `test` also provisions what the tests run
# (the tests only check for it: a failure under CI=true, a skip elsewhere):
#   - the system tools (podman, runc, mmdebstrap, docker-registry, skopeo, htpasswd), with
#     apt-get, when one is missing;
#   - the serving virtualenvs (seldon, mlserver: tests/serving_venv.py names their
#     requirements) in ~/.cache/kfp-pachyderm (or $XDG_CACHE_HOME), when one is missing and
#     the run includes the slow tests, i.e. unless an argument says "not slow" (the fast lane
#     uses none, and creating one downloads TensorFlow: minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"
      return
    fi
  done
  echo "kfp-pachyderm needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 2
}

ensure_venv() {
  local extras=$1
  if [ ! -x .venv/bin/python ]; then
    "$(pick_python)" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  local stamp=".venv/.installed-$extras"
  local want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing kfp-pachyderm[$extras] into .venv ..." >&2
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
    echo "$want" >"$stamp"
  fi
}

# The system tools the tests run for real: podman (with runc; crun fails on hybrid cgroups) and
# mmdebstrap build and run the images; docker-registry, skopeo and htpasswd serve the registry
# tests. Installed with apt-get when one is missing.
TEST_TOOLS="podman:podman runc:runc mmdebstrap:mmdebstrap docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils"

ensure_test_tools() {
  local missing=() pair
  for pair in $TEST_TOOLS; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  echo "installing ${missing[*]} with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; }
}

# The serving virtualenvs the serving tests run, created (once, and reused) by the tests'
# own helper with the tests' interpreter, so they land where the tests look for them.
ensure_serving_venvs() {
  local arg
  for arg in "$@"; do
    case "$arg" in *"not slow"*) return ;; esac
  done
  .venv/bin/python -m tests.serving_venv
}

command=${1:-}
shift || true
case "$command" in
  demo)
    ensure_venv dev,train
    exec .venv/bin/kfp-pachyderm run mnist_tfjob --local "$@"
    ;;
  test)
    ensure_venv dev,train
    ensure_test_tools
    ensure_serving_venvs "$@"
    set +e
    .venv/bin/python -m pytest "$@"
    status=$?
    set -e
    if [ "$status" -eq 5 ]; then
      echo "pytest collected no tests: failing on purpose" >&2
      exit 1
    fi
    exit "$status"
    ;;
  lock)
    # Each image installs exactly these pins, with hashes, from a wheelhouse built on the host.
    ensure_venv dev,train
    lock() {
      .venv/bin/uv pip compile --quiet --generate-hashes --annotation-style line \
        --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
        --custom-compile-command "bash scripts/dev.sh lock" "$@"
    }
    lock pyproject.toml -o images/runtime/requirements.lock
    lock pyproject.toml --extra train -o images/trainer/requirements.lock
    # The GPU base brings TensorFlow with CUDA; everything else is the CPU trainer's.
    lock pyproject.toml --extra train --no-emit-package tensorflow-cpu \
      -o images/trainer-gpu/requirements.lock
    lock images/seldon/requirements.txt -o images/seldon/requirements.lock
    lock images/mlserver/requirements.txt -o images/mlserver/requirements.lock
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo | test [pytest args] | lock" >&2
    exit 2
    ;;
esac
