#!/bin/bash
# Builds the one initramfs that boots both L1 and the L2 guests: busybox,
# lttng-tools, Debian's virtio/9p/KVM modules, lttng-modules and our
# modules (stripped: Debian's build leaves DWARF in out-of-tree modules).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

LTTNG_BUILD=$LAB_CACHE/build/lttng-modules-$LTTNG_VERSION-$KABI
KMOD_BUILD=$LAB_CACHE/build/kmod-$KABI
OUT=$LAB_CACHE/initramfs-$KABI.cpio.gz
R=$LAB_CACHE/build/rootfs
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,root,usr/bin,lib64,var}
ln -s ../run "$R/var/run"

cp /bin/busybox "$R/bin/busybox"
file -L "$R/bin/busybox" | grep -q 'statically linked' || die "busybox is not static"

CONSUMERD=$(ls /usr/lib/*/lttng/libexec/lttng-consumerd | head -n1)
for b in /usr/bin/lttng /usr/bin/lttng-sessiond /usr/bin/lttng-relayd "$CONSUMERD"; do
	mkdir -p "$R$(dirname "$b")"
	cp -L "$b" "$R$b"
	for l in $(ldd "$b" | grep -oE '/[^ ]+'); do
		mkdir -p "$R$(dirname "$l")"
		cp -Ln "$l" "$R$l"
	done
done
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
# lttng-sessiond validates its configuration against this schema.
mkdir -p "$R/usr/share/xml"
cp -a /usr/share/xml/lttng "$R/usr/share/xml/"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\ntracing:x:999:\n' >"$R/etc/group"

# Debian's modules, with the dependencies modprobe resolves for them.
[ -f "$KMODULES/modules.dep" ] || depmod -b "$KROOT" "$KABI"
MD=$R/lib/modules/$KABI
mkdir -p "$MD/extra"
# virtio_net: the live sessions stream to L1's relay daemon (l1.sh).
for m in virtio_pci virtio_rng virtio_net 9pnet_virtio 9p kvm_amd msr; do
	for f in $(modprobe -d "$KROOT" -S "$KABI" --show-depends "$m" | awk '$1=="insmod"{print $2}'); do
		rel=${f#"$KROOT"}
		mkdir -p "$R$(dirname "$rel")"
		cp -n "$f" "$R$rel"
	done
done
cp "$KMODULES"/modules.{order,builtin,builtin.modinfo} "$MD/"
find "$LTTNG_BUILD/src" -name '*.ko' -exec cp {} "$MD/extra/" \;
cp "$KMOD_BUILD"/*.ko "$MD/extra/"
strip --strip-debug "$MD"/extra/*.ko
depmod -b "$R" "$KABI"
for m in kvm_amd 9p virtio_net lttng-tracer lttng-probe-vmtrace-vmsync lttng-probe-vmtrace-host lttng-probe-vmtrace-guest \
	lttng-probe-vmtrace-memsync; do
	modprobe -d "$R" -S "$KABI" --show-depends "$m" >/dev/null ||
		die "module $m not resolvable in the initramfs"
done
# modprobe (and lttng-sessiond through it) loads the vmsync module first.
for m in lttng-probe-vmtrace-host lttng-probe-vmtrace-guest; do
	modprobe -d "$R" -S "$KABI" --show-depends "$m" | grep -q 'lttng-probe-vmtrace-vmsync\.ko' ||
		die "$m does not pull in lttng-probe-vmtrace-vmsync"
done

install -m 755 "$LAB_DIR/guest/init.sh" "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -6) >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "initramfs $(du -h "$OUT" | cut -f1) ($OUT)"
