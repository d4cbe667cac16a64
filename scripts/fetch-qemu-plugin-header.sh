#!/usr/bin/env bash
# Fetches qemu-plugin.h, the header QEMU's TCG plugins compile against, for
# the installed qemu-system-x86.  No Debian binary package ships it: it is
# taken from Debian's qemu *source* package of the same source version.
#
# apt runs with a private configuration (its own deb-src list, package lists
# and cache under the work directory): the system's sources and lists are
# left untouched.  Only the header is kept, in
#   <cache>/<source version, ':' written '_'>/qemu-plugin.h
# (make cannot take a ':' in a dependency path: 1:7.2+dfsg-7 -> 1_7.2+dfsg-7)
# (cache: the first argument, else $VMTRACE_QEMU_PLUGIN_CACHE, else
# /var/cache/vmtrace-lab/qemu-plugin-header).  Idempotent: an existing header
# is reused without network access.  Prints the directory holding the header.
#
# Exit status: 0 ok, 1 download or extraction failed, 2 usage,
# 3 qemu-system-x86 not installed.
set -euo pipefail

usage() { echo "usage: $0 [CACHE_DIR]" >&2; exit 2; }
[ $# -le 1 ] || usage
case "${1:-}" in -h | --help) usage ;; esac

cache=${1:-${VMTRACE_QEMU_PLUGIN_CACHE:-/var/cache/vmtrace-lab/qemu-plugin-header}}

# The binary package's version may carry a binNMU suffix (+bN) that the
# source package does not: ask for the source version.
version=$(dpkg-query -W -f '${source:Version}' qemu-system-x86 2>/dev/null) || version=
if [ -z "$version" ]; then
  echo "fetch-qemu-plugin-header: qemu-system-x86 is not installed (apt-get install qemu-system-x86)" >&2
  exit 3
fi

dest=$cache/${version//:/_}
if [ -s "$dest/qemu-plugin.h" ]; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/src"

# deb-src entries for the suites the installed package can come from.
cat > "$work/sources.list" << 'EOF'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF

apt_private=(
  -o "Dir::Etc::sourcelist=$work/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::archives=$work/archives"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
  -q
)

echo "fetch-qemu-plugin-header: downloading Debian's qemu source $version (about 25 MB)" >&2
if ! apt-get "${apt_private[@]}" update > "$work/update.log" 2>&1; then
  cat "$work/update.log" >&2
  echo "fetch-qemu-plugin-header: apt-get update of the private deb-src list failed" >&2
  exit 1
fi
# --download-only: no unpacking of the whole tree, only the tarballs and .dsc.
if ! (cd "$work/src" && apt-get "${apt_private[@]}" source --download-only "qemu=$version") > "$work/source.log" 2>&1; then
  cat "$work/source.log" >&2
  echo "fetch-qemu-plugin-header: apt-get source qemu=$version failed (is that version still in the archive?)" >&2
  exit 1
fi

# The header lives in the upstream tarball.
orig=$(ls "$work"/src/qemu_*.orig.tar.* 2> /dev/null | head -n 1)
if [ -z "$orig" ]; then
  echo "fetch-qemu-plugin-header: no qemu_*.orig.tar.* in the downloaded source" >&2
  exit 1
fi
tar -tf "$orig" > "$work/members"
member=$(grep '/include/qemu/qemu-plugin\.h$' "$work/members" | head -n 1) || member=
if [ -z "$member" ]; then
  echo "fetch-qemu-plugin-header: $orig has no include/qemu/qemu-plugin.h" >&2
  exit 1
fi
tar -xf "$orig" -C "$work/src" "$member"
header=$work/src/$member
topdir=${member%%/*}

debian=$(ls "$work"/src/qemu_*.debian.tar.* 2> /dev/null | head -n 1)
if [ -n "$debian" ]; then
  tar -xf "$debian" -C "$work/src/$topdir"
  series=$work/src/$topdir/debian/patches/series
  if [ -f "$series" ]; then
    while read -r patch _; do
      case "$patch" in '' | '#'*) continue ;; esac
      if grep -q '^+++ [^ ]*include/qemu/qemu-plugin\.h' "$work/src/$topdir/debian/patches/$patch"; then
        # None does in 7.2; refuse rather than hand out a header the build differs from.
        echo "fetch-qemu-plugin-header: Debian patch $patch changes qemu-plugin.h; apply it by hand" >&2
        exit 1
      fi
    done < "$series"
  fi
fi

mkdir -p "$dest"
cp "$header" "$dest/qemu-plugin.h.tmp"
mv "$dest/qemu-plugin.h.tmp" "$dest/qemu-plugin.h"
chmod 0644 "$dest/qemu-plugin.h"
echo "$dest"
