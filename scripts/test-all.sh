#!/usr/bin/env bash
# Builds vmtrace and runs every test: unit tests (release and ASan+UBSan),
# the integration tests, which run real babeltrace2 graphs, and the kernel
# lab (tests/lab: our modules in a nested-KVM host and guests under QEMU).
# Prints the duration of each stage.  Exit status: 0 when every test passed.
#
# The lab runs by default when it can: as root on an x86-64 Debian machine
# whose apt knows its packages (it installs them and caches its downloads
# and builds in /var/cache/vmtrace-lab).  VMTRACE_LAB=0 skips it;
# VMTRACE_LAB=1 makes a missing requirement an error.  See tests/lab/README.md.
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

# What the lab needs; prints why it cannot run.
lab_requirements() {
  [ "$(id -u)" -eq 0 ] || { echo "needs root"; return 1; }
  [ "$(uname -m)" = x86_64 ] || { echo "needs an x86-64 machine"; return 1; }
  command -v apt-get >/dev/null || { echo "needs Debian's apt"; return 1; }
  local p
  for p in qemu-system-x86 busybox-static lttng-tools linux-image-amd64 lttng-modules-dkms; do
    apt-cache show "$p" >/dev/null 2>&1 || { echo "apt does not know $p"; return 1; }
  done
}

# QEMU 7.2's TCG now and then hangs a nested guest or stalls a CPU of L1
# (tests/lab/README.md, "Reliability"); the lab then exits 75 before any
# check ran and runs again, VMTRACE_LAB_ATTEMPTS times in all (default 3),
# but not once the lab has used VMTRACE_LAB_BUDGET seconds (default 2400;
# one attempt takes 4-9 minutes, at most about 26 with L1's 1500 s
# timeout), so that the whole test command stays well under CI's 90
# minutes.  A failed check is never retried.
run_lab() {
  local rc attempt=1 attempts=${VMTRACE_LAB_ATTEMPTS:-3} start lab_start=$SECONDS
  while :; do
    start=$SECONDS
    rc=0
    tests/lab/run-lab.sh || rc=$?
    echo "=== kernel lab attempt $attempt: exit $rc after $((SECONDS - start)) s"
    [ $rc -eq 75 ] && [ "$attempt" -lt "$attempts" ] &&
      [ $((SECONDS - lab_start)) -lt "${VMTRACE_LAB_BUDGET:-2400}" ] || break
    attempt=$((attempt + 1))
    echo "=== the emulator hung (no check ran): running the lab again"
  done
  return $rc
}
lab=0
case "${VMTRACE_LAB:-auto}" in
0)
  echo "=== kernel lab: not run (VMTRACE_LAB=0)"
  ;;
*)
  if why=$(lab_requirements); then
    stage "kernel lab (tests/lab)" run_lab
    lab=1
  elif [ "${VMTRACE_LAB:-auto}" = 1 ]; then
    echo "=== kernel lab: cannot run: $why" >&2
    exit 1
  else
    echo "=== kernel lab: not run ($why; VMTRACE_LAB=0 skips it without this note)"
  fi
  ;;
esac

# One closing line for whoever reads the end of the log.
unit=$(ctest --test-dir build-asan -N -L unit | sed -n 's/^Total Tests: //p')
all=$(ctest --test-dir build -N | sed -n 's/^Total Tests: //p')
echo "test-all: $((unit + all + lab)) passed, 0 failed"
