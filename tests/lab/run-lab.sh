#!/bin/bash
# The kernel lab: builds lttng-modules and our probe modules for Debian's
# current kernel, boots it under QEMU TCG as a KVM host (L1) that runs two
# traced L2 guests, and checks the recorded traces. Exit 0 = every check
# passed; 75 when QEMU's TCG hung (no check ran: run it again); any other
# status a failure. Downloads and builds are cached in $LAB_CACHE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

STAGES=(
	"00-deps.sh		install the tools (apt)"
	"10-fetch.sh		fetch Debian's kernel, headers, KVM headers, lttng-modules source"
	"15-checkpatch.sh	check kmod/ with the kernel's checkpatch.pl"
	"20-build-lttng-modules.sh	build lttng-modules"
	"30-build-kmod.sh	build our probe modules"
	"35-build-tools.sh	build the guest programs"
	"36-build-memtracer.sh	build the memory tracer (QEMU plugin) and vmtrace"
	"40-build-initramfs.sh	build the initramfs"
	"45-prepare-share.sh	prepare the 9p share"
	"50-run-l1.sh		run L1 and the two L2 guests"
	"60-check.py		check the traces"
)

mkdir -p "$LAB_CACHE"
t0=$(date +%s)
# One line with every stage's duration, whatever the outcome.
TIMES=
summary() {
	log "stage timings:$TIMES; total $(($(date +%s) - t0)) s"
}
trap summary EXIT
for s in "${STAGES[@]}"; do
	script=${s%%$'\t'*}
	what=${s#*$'\t'}
	what=${what##*$'\t'}
	s0=$(date +%s)
	log "stage $script: $what"
	rc=0
	if [ "$script" = 60-check.py ]; then
		"$LAB_DIR/$script" "$LAB_CACHE/share/out" || rc=$?
		TIMES="$TIMES ${script%%.*} $(($(date +%s) - s0)) s"
		[ $rc -eq 0 ] || die "trace checks failed"
	else
		"$LAB_DIR/$script" || rc=$?
		TIMES="$TIMES ${script%%.*} $(($(date +%s) - s0)) s,"
		# 75: the emulator hung, not a failed check (see 50-run-l1.sh)
		[ $rc -eq 75 ] && exit 75
		[ $rc -eq 0 ] || die "stage $script failed"
	fi
	log "stage $script took $(($(date +%s) - s0)) s"
done
log "all checks passed in $(($(date +%s) - t0)) s; traces in $LAB_CACHE/share/out"
