#!/usr/bin/env bash
# Builds vmtrace and runs every test: unit tests (release and ASan+UBSan)
# and the integration tests, which run real babeltrace2 graphs.  Prints
# the duration of each stage.  Exit status: 0 when every test passed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

stage() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== $name"
  "$@"
  echo "=== $name: $((SECONDS - start)) s"
}

stage "install dependencies" scripts/install-deps.sh
stage "build (release + sanitizers)" scripts/build.sh --sanitize
stage "unit tests under ASan+UBSan" \
  env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$(nproc)" -L unit
stage "unit and integration tests" ctest --test-dir build --output-on-failure -j "$(nproc)"
