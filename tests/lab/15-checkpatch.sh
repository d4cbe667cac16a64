#!/bin/bash
# Runs the kernel's scripts/checkpatch.pl (from the lab kernel's
# linux-source, unpacked by 10-fetch.sh) on every C file and header of
# kmod/, in the kernel's default mode. Any error or warning fails the stage:
# fix it, or, if checkpatch is wrong about it, exclude that one report
# type in kmod/.checkpatch.conf (checkpatch reads it from kmod/) and say
# why in kmod/README.md ("Kernel coding style").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

[ -f "${CHECKPATCH:-}" ] || die "checkpatch.pl not unpacked (rerun 10-fetch.sh)"
cd "$REPO_DIR/kmod"
mapfile -t files < <(find . \( -name '*.c' -o -name '*.h' \) -type f | sort)
[ ${#files[@]} -gt 0 ] || die "no C files found in kmod/"
rc=0
out=$(perl "$CHECKPATCH" --no-tree --show-types --quiet -f "${files[@]}" 2>&1) || rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "$out"
	die "checkpatch.pl reports problems in kmod/ (exit $rc)"
fi
log "checkpatch.pl ($KVERSION): ${#files[@]} files of kmod/ clean"
