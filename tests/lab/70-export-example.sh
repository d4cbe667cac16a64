#!/bin/bash
# Packs the last lab run into examples/ as one tar.xz, with the check
# report. Not part of run-lab.sh: the committed recordings change only when
# someone decides to refresh them.
#
# Usage: 70-export-example.sh [lab-recording|memory-recording] [DEST]
#   lab-recording     the host and its two guests l2a, l2b (the default)
#   memory-recording  the host, its three guests (l2m migrated in) and the
#                     memory tracer's trace; make it from a run with
#                     LAB_MEMTRACE_SAMPLE=64, whose trace is a few MB
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

KIND=${1:-lab-recording}
case $KIND in
lab-recording) guests="l2a l2b" ;;
memory-recording) guests="l2a l2b l2m" ;;
*) die "unknown recording '$KIND' (lab-recording or memory-recording)" ;;
esac
OUT=$LAB_CACHE/share/out
DEST=${2:-$REPO_DIR/examples/$KIND}
[ -d "$OUT/l1/trace" ] || die "no lab output in $OUT (run run-lab.sh first)"
if [ "$KIND" = memory-recording ]; then
	[ -d "$OUT/memtrace" ] && [ -d "$OUT/l2m/trace" ] ||
		die "the last run has no memory trace or no migrated guest (LAB_MEMTRACER=0?)"
fi
"$LAB_DIR/60-check.py" "$OUT" >"$OUT/check.txt" || die "the last run does not pass its checks"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
R=$tmp/recording
mkdir -p "$R"
cp "$OUT/check.txt" "$OUT/l1.sh.log" "$OUT/l1-mem-mb" "$OUT/lab.conf" "$R/"
for m in l1 $guests; do
	mkdir -p "$R/$m"
	(cd "$OUT/$m" && cp -a trace dmesg.txt "$R/$m/")
done
cp "$OUT"/l1/uuid-* "$R/l1/"
for g in $guests; do
	(cd "$OUT/$g" && cp l2.log vm_uid "$R/$g/")
	for f in workload.txt hcall-user.txt memwrite.txt memwrite-closed.txt migrate.txt; do
		[ ! -f "$OUT/$g/$f" ] || cp "$OUT/$g/$f" "$R/$g/"
	done
done
if [ "$KIND" = memory-recording ]; then
	cp -a "$OUT/memtrace" "$R/memtrace"
	cp "$OUT/memtrace-stats.json" "$R/"
fi
echo "kernel $KABI ($KVERSION), lttng-modules $LTTNG_VERSION, $(qemu-system-x86_64 --version | head -n1)" \
	>"$R/versions.txt"
mkdir -p "$DEST"
tar -C "$tmp" --owner=0 --group=0 --sort=name -cJf "$DEST/recording.tar.xz" recording
log "wrote $DEST/recording.tar.xz ($(du -h "$DEST/recording.tar.xz" | cut -f1))"
