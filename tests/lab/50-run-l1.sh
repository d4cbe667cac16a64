#!/bin/bash
# Boots L1 under QEMU TCG with an emulated SVM CPU with nested paging; L1
# runs guest-scripts/l1.sh, which starts the two L2 guests. Results land in
# $LAB_CACHE/share/out.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

S=$LAB_CACHE/share
L1_MEM_MB=${L1_MEM_MB:-2048}
rm -rf "$S/out" "$S"/*.sh.log "$S"/*.sh.rc
mkdir -p "$S/out"
echo "$L1_MEM_MB" >"$S/out/l1-mem-mb"
rc=0
timeout "${LAB_QEMU_TIMEOUT:-1000}" qemu-system-x86_64 \
	-machine q35 -accel tcg,thread=multi -cpu qemu64,+svm,+npt \
	-smp 2 -m "$L1_MEM_MB" \
	-kernel "$VMLINUZ" -initrd "$LAB_CACHE/initramfs-$KABI.cpio.gz" \
	-append "console=ttyS0 panic=-1 loglevel=4 edd=off lab_script=l1.sh lab_name=l1" \
	-nographic -no-reboot -device virtio-rng-pci \
	-virtfs "local,path=$S,mount_tag=host0,security_model=none,id=host0" \
	>"$LAB_CACHE/l1-console.log" 2>&1 || rc=$?
# An emulator hang (QEMU 7.2's TCG, tests/lab/README.md) is reported
# apart from a failed check, with its own exit status, so that a caller
# may run the lab again instead of taking it for a bug of ours.
hang() {
	echo "lab: EMULATOR HANG: $*" >&2
	exit 75
}
[ $rc -eq 124 ] && hang "L1 timed out (console: $LAB_CACHE/l1-console.log)"
if grep -q 'Kernel panic' "$LAB_CACHE/l1-console.log"; then
	grep -B4 -A12 -m1 'Kernel panic' "$LAB_CACHE/l1-console.log" >&2
	die "L1 kernel panic (console: $LAB_CACHE/l1-console.log)"
fi
[ -f "$S/l1.sh.rc" ] || die "L1 script did not finish (console: $LAB_CACHE/l1-console.log)"
if [ -f "$S/out/hang" ]; then
	tail -n 40 "$S/out/l2s/console.txt" 2>/dev/null || true
	hang "$(cat "$S/out/hang") (logs: $S/out/l2s)"
fi
if [ "$(cat "$S/l1.sh.rc")" != 0 ]; then
	cat "$S/l1.sh.log"
	die "L1 script failed"
fi
cp "$S/l1.sh.log" "$S/out/l1.sh.log"
grep -E '^T\+|PARAM-REFUSED|REFUSED-WHILE' "$S/l1.sh.log" || true
for g in l2a l2b l2s; do
	if [ "$(cat "$S/out/$g/qemu.rc" 2>/dev/null)" = 124 ]; then
		tail -n 40 "$S/out/$g/console.txt" 2>/dev/null || true
		hang "$g hung and was killed by L1's watchdog"
	fi
	[ "$(cat "$S/out/$g/l2.rc" 2>/dev/null)" = 0 ] || {
		cat "$S/out/$g/l2.log" "$S/out/$g/console.txt" 2>/dev/null | tail -n 40
		die "$g script failed"
	}
	grep -E '^T\+|PARAM-REFUSED|REFUSED-WHILE' "$S/out/$g/l2.log" || true
done
