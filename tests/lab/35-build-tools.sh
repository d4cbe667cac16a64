#!/bin/bash
# Builds the static programs that run inside the lab's guests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

B=$LAB_CACHE/build/tools
mkdir -p "$B"
for t in workload hcall-user memwrite nondet-reads clock-pair; do
	gcc -O2 -Wall -Werror -static -o "$B/$t" "$LAB_DIR/tools/$t.c" ||
		die "cannot build $t"
done
log "tools built in $B"
