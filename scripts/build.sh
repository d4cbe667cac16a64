#!/usr/bin/env bash
# Configures and builds vmtrace in build/ (release) and, with --sanitize,
# everything again in build-asan/ with AddressSanitizer and UBSan (optimised:
# the integration tests run there too).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > build.configure.log 2>&1 || { cat build.configure.log; exit 1; }
cmake --build build -j "$jobs"
if [ "${1:-}" = "--sanitize" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMTRACE_SANITIZE=ON \
    > build-asan.configure.log 2>&1 || { cat build-asan.configure.log; exit 1; }
  cmake --build build-asan -j "$jobs"
fi
rm -f build.configure.log build-asan.configure.log
