#!/usr/bin/env bash
# The C++ sources follow the root .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'babeltrace-plugins/*.cpp' 'babeltrace-plugins/*.hpp' 'correlator/*.cpp' \
  'correlator/*.hpp' 2>/dev/null || find babeltrace-plugins correlator -name '*.[ch]pp')
clang-format --dry-run --Werror "${files[@]}"
echo "${#files[@]} files formatted"
