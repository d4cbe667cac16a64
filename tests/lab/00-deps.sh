#!/bin/bash
# Installs the build machine's tools for the lab; idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKGS=(qemu-system-x86 qemu-utils busybox-static lttng-tools babeltrace2
	build-essential bc bison flex libelf-dev libssl-dev cpio kmod xz-utils
	python3 binutils file)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
for t in qemu-system-x86_64 busybox lttng lttng-sessiond babeltrace2 gcc make cpio depmod; do
	command -v "$t" >/dev/null || die "$t not found after installing dependencies"
done
