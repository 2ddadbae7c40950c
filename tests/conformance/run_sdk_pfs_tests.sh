#!/usr/bin/env bash
# Runs the Pachyderm Python SDK's own PFS and metadata tests against the local server.
#
# Their code is not part of this repository, nor of the pachyderm_sdk sdist or wheel on PyPI
# (both hold only the pachyderm_sdk package). Get it from the pachyderm/pachyderm repository
# (folder python-sdk/, branch 2.12.x, matching the pachyderm_sdk 2.12.x in .venv), then:
#
#   bash tests/conformance/run_sdk_pfs_tests.sh /path/to/pachyderm/python-sdk [pytest args...]
#
# The suite cannot run this in CI: the SDK's tests come only from that repository.
#
# It copies the SDK's tests/ folder into a scratch directory (so the pachyderm_sdk under test is
# the one installed in .venv, never a pachyderm_sdk/ folder next to the tests, and nothing is
# written into the checkout), starts `kfp-pachyderm local serve --create` on a free port with a
# fresh data directory, points the SDK's test fixtures at it (PACH_PYTHON_TEST_HOST/PORT) and
# runs tests/test_pfs.py and tests/test_metadata.py. Tests outside the supported subset are
# deselected and listed below. pytest, pytest-timeout and pandas (one SDK test reads a file with
# pandas) are installed into .venv from PyPI when missing. Exit status: pytest's, or 2 for a bad
# SDK folder, 3 when a prerequisite cannot be installed, 4 when the server does not start.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 PYTHON_SDK_DIR [pytest args...]${1:+ (no folder $1)}" >&2
  exit 2
fi
sdk_dir=$(cd "$1" && pwd)
shift
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$repo_root/.venv"
python="$venv/bin/python"

for f in tests/__init__.py tests/fixtures.py tests/utils.py tests/test_pfs.py tests/test_metadata.py; do
  if [ ! -f "$sdk_dir/$f" ]; then
    echo "error: $sdk_dir/$f missing: pass the python-sdk/ folder of pachyderm/pachyderm" >&2
    exit 2
  fi
done

missing=()
for pkg in pytest:pytest pytest_timeout:pytest-timeout pandas:pandas; do
  "$python" -c "import ${pkg%%:*}" 2>/dev/null || missing+=("${pkg##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing into $venv: ${missing[*]}"
  if ! "$python" -m pip install -q --disable-pip-version-check "${missing[@]}"; then
    echo "error: could not install ${missing[*]} (PyPI needed)" >&2
    exit 3
  fi
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
    echo "--- local server log (last 40 lines) ---" >&2
    tail -n 40 "$work/server.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$work/sdk"
cp -R "$sdk_dir/tests" "$work/sdk/tests"
printf '[pytest]\n' >"$work/sdk/pytest.ini"  # rootdir here; no config from the checkout
port_file="$work/address"
"$venv/bin/kfp-pachyderm" local serve --create --port 0 --data-dir "$work/pfs" \
  --address-file "$port_file" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
  [ -s "$port_file" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: kfp-pachyderm local serve exited before listening" >&2
    exit 4
  fi
  sleep 0.1
done
if [ ! -s "$port_file" ]; then
  echo "error: kfp-pachyderm local serve did not listen within 30 s" >&2
  exit 4
fi
address=$(cat "$port_file")
port=${address##*:}
echo "local server at $address; SDK tests from $sdk_dir/tests;" \
  "pachyderm_sdk $("$python" -c 'import importlib.metadata as m; print(m.version("pachyderm_sdk"))')"

# Not supported here, by design:
#   test_put_file_url (2 runs): the server would fetch https://www.pachyderm.com (AddFile from a
#   URL; the local server answers UNIMPLEMENTED, and a test machine has no such network anyway).
cd "$work/sdk"
status=0
PACH_PYTHON_TEST_HOST=127.0.0.1 PACH_PYTHON_TEST_PORT=$port \
  "$python" -m pytest -p no:cacheprovider -o addopts="" -q --timeout=120 \
  tests/test_pfs.py tests/test_metadata.py \
  --deselect tests/test_pfs.py::TestModifyFile::test_put_file_url "$@" || status=$?
exit "$status"
