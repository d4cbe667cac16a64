#!/bin/bash
# Fills the 9p share L1 boots with: the guest scripts, the guest programs,
# and what L1 needs to run the L2 guests (QEMU with its libraries and
# firmware, the kernel and the initramfs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

S=$LAB_CACHE/share
rm -rf "$S"
mkdir -p "$S/out" "$S/l2/lib" "$S/l2/fw" "$S/tools"
cp "$LAB_DIR"/guest-scripts/*.sh "$S/"
cp "$LAB_CACHE"/build/tools/* "$S/tools/"

Q=$(command -v qemu-system-x86_64)
cp "$Q" "$S/l2/"
for l in $(ldd "$Q" | grep -oE '/[^ ]+'); do
	cp -L "$l" "$S/l2/lib/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$S/l2/lib/"
for f in bios-256k.bin linuxboot_dma.bin kvmvapic.bin multiboot_dma.bin pvh.bin; do
	src=$(ls /usr/share/qemu/$f /usr/share/seabios/$f 2>/dev/null | head -n1 || true)
	[ -n "$src" ] || die "QEMU firmware $f not found"
	cp -L "$src" "$S/l2/fw/"
done
cp "$VMLINUZ" "$S/l2/vmlinuz"
cp "$LAB_CACHE/initramfs-$KABI.cpio.gz" "$S/l2/initramfs.cpio.gz"
log "share ready ($(du -sh "$S" | cut -f1))"
