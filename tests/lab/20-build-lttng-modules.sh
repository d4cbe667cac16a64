#!/bin/bash
# Builds lttng-modules out of tree against the lab kernel's headers, adapted
# to that kernel where its tracepoint prototypes moved on.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

B=$LAB_CACHE/build/lttng-modules-$LTTNG_VERSION-$KABI
if [ -f "$B/.built" ]; then
	log "lttng-modules already built in $B"
	exit 0
fi
rm -rf "$B"
mkdir -p "$(dirname "$B")"
cp -a "$LTTNG_DKMS_SRC" "$B"

# Debian backported a third hrtimer_start argument (bool was_armed) into its
# stable kernel; lttng-modules 2.13.9 still probes the two-argument form and
# would not build. Adapt the probe only when the kernel header has it.
KTIMER=$(ls "$KROOT"/usr/src/linux-headers-*-common/include/trace/events/timer.h | head -n1)
if grep -q 'enum hrtimer_mode mode, bool was_armed' "$KTIMER"; then
	perl -0pi -e 's/(LTTNG_TRACEPOINT_EVENT_MAP\(hrtimer_start,\s*timer_hrtimer_start,\s*)TP_PROTO\(struct hrtimer \*hrtimer, enum hrtimer_mode mode\),(\s*)TP_ARGS\(hrtimer, mode\),/$1TP_PROTO(struct hrtimer *hrtimer, enum hrtimer_mode mode, bool was_armed),$2TP_ARGS(hrtimer, mode, was_armed),/' \
		"$B/include/instrumentation/events/timer.h"
	grep -q 'enum hrtimer_mode mode, bool was_armed' "$B/include/instrumentation/events/timer.h" ||
		die "could not adapt lttng-modules' hrtimer_start probe"
	log "hrtimer_start probe adapted to the kernel's was_armed argument"
fi

make -C "$B" KERNELDIR="$KDIR" -j"$LAB_JOBS" >"$B.log" 2>&1 ||
	{ tail -n 30 "$B.log"; die "lttng-modules build failed (log: $B.log)"; }
for m in lttng-tracer lttng-ring-buffer-client-discard lttng-probe-sched lttng-probe-kvm lttng-probe-timer; do
	[ -n "$(find "$B/src" -name "$m.ko")" ] || die "lttng-modules build produced no $m.ko"
done
touch "$B/.built"
log "lttng-modules built: $(find "$B/src" -name '*.ko' | wc -l) modules"
