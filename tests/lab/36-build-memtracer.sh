#!/bin/bash
# Builds what the memory-tracer part of the lab runs on this side: the
# QEMU plugin (and libvmtrace-mem) that L1's QEMU loads, and the vmtrace
# command that 60-check.py runs on the traces. The build directory is the
# README's (build/, or $VMTRACE_BUILD_DIR): scripts/test-all.sh has built it
# already, and a lab run alone builds only what is missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "${LAB_MEMTRACER:-1}" = 1 ] && [ "${LAB_HOST_MODULE:-1}" = 1 ] || {
	log "memory tracer not used (LAB_MEMTRACER=0 or LAB_HOST_MODULE=0)"
	exit 0
}
B=${VMTRACE_BUILD_DIR:-$REPO_DIR/build}
"$REPO_DIR/scripts/fetch-qemu-plugin-header.sh" >/dev/null ||
	die "cannot fetch qemu-plugin.h (scripts/fetch-qemu-plugin-header.sh)"
if [ ! -f "$B/CMakeCache.txt" ]; then
	cmake -S "$REPO_DIR" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$LAB_CACHE/memtracer-configure.log" 2>&1 ||
		die "cmake configure failed (log: $LAB_CACHE/memtracer-configure.log)"
fi
# A cache configured before the header was fetched must look again.
grep -q 'vmtrace-mem-qemu' "$B/Makefile" 2>/dev/null || grep -rqs 'vmtrace-mem-qemu' "$B/ust/qemu-plugin/Makefile" ||
	cmake "$B" >"$LAB_CACHE/memtracer-configure.log" 2>&1
cmake --build "$B" -j"$LAB_JOBS" --target vmtrace-mem-qemu vmtrace babeltrace-plugin-vmtrace \
	>"$LAB_CACHE/memtracer-build.log" 2>&1 || {
	tail -n 30 "$LAB_CACHE/memtracer-build.log"
	die "building the memory tracer failed (log: $LAB_CACHE/memtracer-build.log)"
}
[ -f "$B/libvmtrace-mem-qemu.so" ] || die "no $B/libvmtrace-mem-qemu.so after the build"
log "memory tracer: $B/libvmtrace-mem-qemu.so"
