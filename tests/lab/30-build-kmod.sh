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
rm -rf "$B"
mkdir -p "$B"
cp -a "$REPO_DIR/kmod/." "$B/"
make -C "$B" KERNELDIR="$KDIR" LTTNG_MODULES_DIR="$LTTNG_BUILD" \
	KVM_PRIVATE_DIR="$KVM_PRIVATE" -j"$LAB_JOBS" >"$B.log" 2>&1 ||
	{ grep -E 'error|ERROR' "$B.log" | head -n 20; die "kmod build failed (log: $B.log)"; }
grep -q 'warning:' "$B.log" && { grep 'warning:' "$B.log"; die "kmod build has compiler warnings"; }
for m in lttng-probe-vmtrace-host lttng-probe-vmtrace-guest; do
	[ -f "$B/$m.ko" ] || die "$m.ko not built"
	modinfo -F vermagic "$B/$m.ko" | grep -q "^$KABI " || die "$m.ko has the wrong vermagic"
done
log "kmod built: $(cd "$B" && ls ./*.ko | xargs -n1 basename | tr '\n' ' ')"
