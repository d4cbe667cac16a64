#!/bin/bash
# Builds the project's probe modules (kmod/) against the lab kernel and the
# lab's lttng-modules build. The build runs in a copy so the repository
# stays free of build products.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

LTTNG_BUILD=$LAB_CACHE/build/lttng-modules-$LTTNG_VERSION-$KABI
[ -f "$LTTNG_BUILD/.built" ] || die "run 20-build-lttng-modules.sh first"
B=$LAB_CACHE/build/kmod-$KABI

build() {	# dir [make arguments]: builds kmod/ in a fresh copy
	local d=$1
	shift
	rm -rf "$d"
	mkdir -p "$d"
	cp -a "$REPO_DIR/kmod/." "$d/"
	make -C "$d" KERNELDIR="$KDIR" LTTNG_MODULES_DIR="$LTTNG_BUILD" \
		KVM_PRIVATE_DIR="$KVM_PRIVATE" -j"$LAB_JOBS" "$@" >"$d.log" 2>&1 ||
		{ grep -E 'error|ERROR' "$d.log" | head -n 20; die "kmod build failed (log: $d.log)"; }
	grep -q 'warning:' "$d.log" && { grep 'warning:' "$d.log"; die "kmod build has compiler warnings"; }
	# Kbuild reports a probe left out with "vmtrace: ..." (make's own warning).
	grep 'vmtrace: ' "$d.log" || true
}
modinfo_events() {	# module.ko: the events it offers, one per line
	modinfo -F vmtrace_event "$1"
}

build "$B"
for m in lttng-probe-vmtrace-vmsync lttng-probe-vmtrace-host lttng-probe-vmtrace-guest \
	lttng-probe-vmtrace-memsync; do
	[ -f "$B/$m.ko" ] || die "$m.ko not built"
	modinfo -F vermagic "$B/$m.ko" | grep -q "^$KABI " || die "$m.ko has the wrong vermagic"
done
# On this kernel every probe fits: nothing may be left out.
grep -q 'vmtrace: .* left out' "$B.log" && die "a probe was left out of the build against $KABI"
for m in "$B"/*.ko; do
	[ -z "$(modinfo -F vmtrace_left_out "$m")" ] || die "$(basename "$m") lists left-out events"
done
# The host and guest modules take the vmsync events from the vmsync module.
for m in lttng-probe-vmtrace-host lttng-probe-vmtrace-guest; do
	modinfo -F depends "$B/$m.ko" | tr ',' '\n' | grep -qxE 'lttng[-_]probe[-_]vmtrace[-_]vmsync' ||
		die "$m.ko does not depend on lttng-probe-vmtrace-vmsync"
done
log "kmod built: $(cd "$B" && ls ./*.ko | xargs -n1 basename | tr '\n' ' ')"

# A kernel whose unmap_vmas() has another prototype (simulated: the check
# compiles against a wrong one) must still build the guest module, without
# guest_mm_unmap, saying so at build time and in the module's modinfo.
BB=$LAB_CACHE/build/kmod-$KABI-break
build "$BB" VMTRACE_CHECK_BREAK=unmap_vmas
grep -q 'vmtrace: unmap_vmas() differs .*guest_mm_unmap left out' "$BB.log" ||
	die "no build-time message for the left-out unmap_vmas probe (log: $BB.log)"
g=$BB/lttng-probe-vmtrace-guest.ko
[ -f "$g" ] || die "guest module not built when unmap_vmas() differs"
modinfo_events "$g" | grep -qx guest_mm_map || die "guest_mm_map missing from the left-out build"
modinfo_events "$g" | grep -qx guest_mm_unmap && die "guest_mm_unmap still offered by the left-out build"
modinfo -F vmtrace_left_out "$g" | grep -q '^guest_mm_unmap: unmap_vmas()' ||
	die "the left-out build's modinfo does not name guest_mm_unmap"
# The event must be gone from the module, not only from its modinfo.
strings "$g" | grep -qx guest_mm_unmap && die "guest_mm_unmap is still declared in the left-out build"
log "left-out probe: unmap_vmas() mismatch builds the guest module without guest_mm_unmap"
rm -rf "$BB"
