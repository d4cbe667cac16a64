# shellcheck shell=bash
# Common settings for the lab stages; sourced, never run.
# All downloads and build products live in LAB_CACHE, outside the repository,
# so that reruns are fast and nothing large can be committed by accident.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LAB_DIR/../.." && pwd)
LAB_CACHE=${LAB_CACHE:-/var/cache/vmtrace-lab}
LAB_JOBS=${LAB_JOBS:-$(nproc)}
export LAB_DIR REPO_DIR LAB_CACHE LAB_JOBS

die() {
	echo "lab: FAIL: $*" >&2
	exit 1
}

log() {
	echo "lab: $*"
}

# A stage that set -e stops says where, instead of failing without a word
# (its output may be redirected to a log nobody prints).
lab_on_error() {
	echo "lab: FAIL: ${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}: '$BASH_COMMAND' exited with $1" >&2
}
if [[ $- == *e* ]]; then
	set -E
	trap 'lab_on_error $?' ERR
fi

# The kernel the lab boots and builds against: whatever linux-image-amd64
# depends on today, so the lab follows Debian's security updates.
lab_kernel_abi() {
	local v
	v=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9.]*-[0-9]*-amd64\)$/\1/p' | head -n1)
	[ -n "$v" ] || die "cannot find the kernel ABI linux-image-amd64 depends on"
	echo "$v"
}

# Resolved package versions, written by 10-fetch.sh.
lab_env() {
	[ -f "$LAB_CACHE/versions.env" ] || die "run 10-fetch.sh first ($LAB_CACHE/versions.env missing)"
	# shellcheck disable=SC1091
	. "$LAB_CACHE/versions.env"
}
