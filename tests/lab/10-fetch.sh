#!/bin/bash
# Downloads Debian's kernel image, headers, kbuild, the KVM private headers
# from linux-source and the lttng-modules source, and unpacks them under
# $LAB_CACHE without installing anything (installing lttng-modules-dkms would
# start a dkms build that fails on this kernel).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ABI=$(lab_kernel_abi)
DL=$LAB_CACHE/dl
ROOT=$LAB_CACHE/root-$ABI
mkdir -p "$DL"
# apt-get download drops privileges to _apt; let it write here.
if id _apt >/dev/null 2>&1; then chown _apt "$DL"; fi

pkg_version() {
	apt-cache show --no-all-versions "$1" | sed -n 's/^Version: //p' | head -n1
}
pkg_depend() {	# the dependency of package $1 whose name matches $2
	apt-cache show --no-all-versions "$1" | sed -n 's/^Depends: //p' | tr ',' '\n' |
		sed -n "s/^ *\\($2\\)\\( .*\\)\\?\$/\\1/p" | head -n1
}
fetch() {	# package version -> path of the .deb in $DL
	local f
	f=$(ls "$DL/$1_$(echo "$2" | sed 's/:/%3a/')_"*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$f" ]; then
		(cd "$DL" && apt-get download -q "$1=$2" >/dev/null) || die "apt-get download $1=$2 failed"
		f=$(ls "$DL/$1_$(echo "$2" | sed 's/:/%3a/')_"*.deb | head -n1)
	fi
	echo "$f"
}

ksrc_extract() {	# dir pattern...: files of the linux-source tarball into dir
	local dir=$1 deb tmp
	shift
	deb=$(fetch "$KSRC" "$KVERSION")
	tmp=$(mktemp -d "$LAB_CACHE/ksrc.XXXXXX")
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.xz'
	mkdir -p "$dir"
	tar -xJf "$tmp"/usr/src/linux-source-*.tar.xz -C "$dir" --strip-components=1 \
		--wildcards "$@"
	rm -rf "$tmp"
}

KVERSION=$(pkg_version "linux-image-$ABI")
HDR_COMMON=$(pkg_depend "linux-headers-$ABI" 'linux-headers-[^ ]*-common')
KBUILD=$(pkg_depend "linux-headers-$ABI" 'linux-kbuild-[^ ]*')
KSRC=linux-source-$(echo "$KVERSION" | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
LTTNG_VERSION=$(pkg_version lttng-modules-dkms)
[ -n "$KVERSION" ] && [ -n "$HDR_COMMON" ] && [ -n "$KBUILD" ] && [ -n "$LTTNG_VERSION" ] ||
	die "cannot resolve package versions for $ABI"

stamp=$ROOT/.unpacked-$KVERSION
if [ ! -f "$stamp" ]; then
	rm -rf "$ROOT"
	mkdir -p "$ROOT"
	for p in "linux-image-$ABI" "linux-headers-$ABI" "$HDR_COMMON" "$KBUILD"; do
		dpkg -x "$(fetch "$p" "$KVERSION")" "$ROOT"
	done
	# The headers tree points at /usr/src and /usr/lib by absolute paths;
	# repoint it into $ROOT so nothing outside the cache is used.
	hdr=$ROOT/usr/src/linux-headers-$ABI
	common=$ROOT/usr/src/$HDR_COMMON
	sed -i "s|/usr/src/$HDR_COMMON|$common|g" "$hdr/Makefile"
	for d in "$hdr" "$common"; do
		for l in scripts tools; do
			[ -L "$d/$l" ] && ln -sfn "$ROOT/usr/lib/$KBUILD/$l" "$d/$l"
		done
	done
	# KVM's private headers (arch/x86/kvm, virt/kvm) are only in linux-source.
	ksrc_extract "$ROOT/kvm-private" '*/arch/x86/kvm/*.h' '*/virt/kvm/*.h'
	touch "$stamp"
fi
# The kernel's checkpatch.pl and the data files it reads, for 15-checkpatch.sh.
CHECKPATCH_DIR=$ROOT/checkpatch
if [ ! -f "$CHECKPATCH_DIR/scripts/checkpatch.pl" ]; then
	rm -rf "$CHECKPATCH_DIR"
	ksrc_extract "$CHECKPATCH_DIR" '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'
fi

LTTNG_SRC=$LAB_CACHE/lttng-dkms-$LTTNG_VERSION
if [ ! -d "$LTTNG_SRC/usr/src" ]; then
	rm -rf "$LTTNG_SRC"
	dpkg -x "$(fetch lttng-modules-dkms "$LTTNG_VERSION")" "$LTTNG_SRC"
fi

KDIR=$ROOT/usr/src/linux-headers-$ABI
[ -f "$KDIR/Module.symvers" ] || die "no Module.symvers in $KDIR"
[ -f "$ROOT/kvm-private/arch/x86/kvm/trace.h" ] || die "KVM private headers missing"
[ -f "$ROOT/boot/vmlinuz-$ABI" ] || die "kernel image missing"
[ -f "$CHECKPATCH_DIR/scripts/checkpatch.pl" ] || die "checkpatch.pl missing from linux-source"
ls -d "$LTTNG_SRC"/usr/src/lttng-modules-* >/dev/null || die "lttng-modules source missing"

cat >"$LAB_CACHE/versions.env.tmp" <<EOV
KABI=$ABI
KVERSION=$KVERSION
KROOT=$ROOT
KDIR=$KDIR
KVM_PRIVATE=$ROOT/kvm-private
VMLINUZ=$ROOT/boot/vmlinuz-$ABI
KMODULES=$ROOT/lib/modules/$ABI
CHECKPATCH=$CHECKPATCH_DIR/scripts/checkpatch.pl
LTTNG_VERSION=$LTTNG_VERSION
LTTNG_DKMS_SRC=$(ls -d "$LTTNG_SRC"/usr/src/lttng-modules-* | head -n1)
EOV
mv "$LAB_CACHE/versions.env.tmp" "$LAB_CACHE/versions.env"
log "kernel $ABI ($KVERSION), lttng-modules $LTTNG_VERSION"
