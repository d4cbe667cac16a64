#!/bin/sh
# DKMS build step: locates the lttng-modules DKMS build tree and the KVM
# private headers for kernel $1, then builds with the module Makefile.
set -eu
kernelver=$1
kdir=$2
dkms_tree=${3:-/var/lib/dkms}

lttng=$(ls -d "$dkms_tree"/lttng-modules/*/build 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$lttng" ] || [ ! -f "$lttng/src/Module.symvers" ]; then
	echo "vmtrace-kmod: no built lttng-modules DKMS tree under $dkms_tree" >&2
	exit 1
fi
mm=$(echo "$kernelver" | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
kvm=${KVM_PRIVATE_DIR:-}
for d in "$kdir" "/usr/src/linux-source-$mm"; do
	if [ -z "$kvm" ] && [ -f "$d/arch/x86/kvm/trace.h" ]; then
		kvm=$d
	fi
done
if [ -z "$kvm" ]; then
	echo "vmtrace-kmod: KVM private headers not found (unpack linux-source-$mm or set KVM_PRIVATE_DIR)" >&2
	exit 1
fi
exec make KERNELDIR="$kdir" LTTNG_MODULES_DIR="$lttng" KVM_PRIVATE_DIR="$kvm" modules
