#!/usr/bin/env bash
# The two set-up commands of the README, on a fresh machine or an existing checkout:
#
#   bash scripts/dev.sh demo        run the main job: the mnist_tfjob pipeline, locally, on the
#                                   embedded local Pachyderm server (extra arguments go to
#                                   `kfp-pachyderm run`, e.g. --param epochs=3)
#   bash scripts/dev.sh test [...]  run the whole test suite (extra arguments go to pytest)
#
# Each creates .venv in the repository root when missing and installs the package with what
# it needs (again only when pyproject.toml changed).
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

command=${1:-}
shift || true
case "$command" in
  demo)
    ensure_venv dev,train
    exec .venv/bin/kfp-pachyderm run mnist_tfjob --local "$@"
    ;;
  test)
    ensure_venv dev,train
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
  *)
    echo "usage: bash scripts/dev.sh demo | test [pytest args]" >&2
    exit 2
    ;;
esac
