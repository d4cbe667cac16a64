#!/bin/busybox sh
# /init of the lab's initramfs (L1 and L2 alike): mounts the 9p share
# "host0" on /mnt and runs the script named by lab_script= on the kernel
# command line, then powers off. The script's exit status goes to
# /mnt/<script>.rc so the outer level can tell success from a crash.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root LTTNG_HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs shm /dev/shm
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
# The trace's hostname names the machine (L1, l2a, ...) in vmtrace's output.
hostname "$(sed -n 's/.*lab_name=\([^ ]*\).*/\1/p' /proc/cmdline)"
for m in virtio_pci virtio_rng 9pnet_virtio 9p; do modprobe $m; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host0 /mnt ||
	echo "init: 9p mount failed"
S=$(sed -n 's/.*lab_script=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$S" ] && [ -f "/mnt/$S" ] && grep -q ' lab_detach' /proc/cmdline; then
	# A guest that migrates: QEMU refuses to migrate while the 9p share is
	# mounted, so the script runs from a copy, unmounts the share before
	# the migration and mounts it again on the new host; its log and
	# status reach the share at the end (the status last: the outer level
	# waits for it).
	cp "/mnt/$S" "/tmp/$S"
	sh "/tmp/$S" >"/tmp/$S.log" 2>&1
	echo $? >"/tmp/$S.rc"
	grep -q ' /mnt ' /proc/mounts ||
		mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host0 /mnt
	cp "/tmp/$S.log" "/mnt/$S.log"
	cp "/tmp/$S.rc" "/mnt/$S.rc"
	cat "/tmp/$S.log"
elif [ -n "$S" ] && [ -f "/mnt/$S" ]; then
	sh "/mnt/$S" >"/mnt/$S.log" 2>&1
	echo $? >"/mnt/$S.rc"
	cat "/mnt/$S.log"
else
	echo "init: no lab script ($S)"
fi
sync
umount /mnt 2>/dev/null
poweroff -f
