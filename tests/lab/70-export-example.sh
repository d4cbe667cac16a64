#!/bin/bash
# Packs the last lab run (host + two guests) into examples/lab-recording/
# as one tar.xz, with the check report. Not part of run-lab.sh: the
# committed recording changes only when someone decides to refresh it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

OUT=$LAB_CACHE/share/out
DEST=${1:-$REPO_DIR/examples/lab-recording}
[ -d "$OUT/l1/trace" ] || die "no lab output in $OUT (run run-lab.sh first)"
"$LAB_DIR/60-check.py" "$OUT" >"$OUT/check.txt" || die "the last run does not pass its checks"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/recording"
cp "$OUT/check.txt" "$OUT/l1.sh.log" "$OUT/l1-mem-mb" "$tmp/recording/"
for m in l1 l2a l2b; do
	mkdir -p "$tmp/recording/$m"
	(cd "$OUT/$m" && cp -a trace dmesg.txt "$tmp/recording/$m/")
done
cp "$OUT"/l1/uuid-* "$tmp/recording/l1/"
for g in l2a l2b; do
	(cd "$OUT/$g" && cp l2.log vm_uid workload.txt hcall-user.txt "$tmp/recording/$g/")
done
echo "kernel $KABI ($KVERSION), lttng-modules $LTTNG_VERSION, $(qemu-system-x86_64 --version | head -n1)" \
	>"$tmp/recording/versions.txt"
mkdir -p "$DEST"
tar -C "$tmp" --owner=0 --group=0 --sort=name -cJf "$DEST/recording.tar.xz" recording
log "wrote $DEST/recording.tar.xz ($(du -h "$DEST/recording.tar.xz" | cut -f1))"
