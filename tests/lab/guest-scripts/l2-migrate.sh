# l2m, the guest migrated onto the traced host: boots in one QEMU of L1
# (l2m-src), maps memwrite's buffer, and is migrated into a second QEMU
# (l2m, started with -incoming) while L1's host session records. On the new
# host it starts its own session, whose statedump must describe the buffer
# mapped before, and writes the buffer inside a memory-tracer window.
# Runs from a copy in /tmp (init.sh, lab_detach): the share is unmounted
# for the migration.
LAB_NAME=$(sed -n 's/.*lab_name=\([^ ]*\).*/\1/p' /proc/cmdline)
cp /mnt/common.sh /tmp/common.sh
cp -a /mnt/tools /tmp/tools
. /tmp/common.sh
t "booted, $(grep -c ^processor /proc/cpuinfo) vCPUs"

# The buffer is mapped (page faults) before the migration and written
# after it: only the guest statedump can tell the join where it is.
/tmp/tools/memwrite /tmp/memwrite.txt /tmp/memwrite-go >/tmp/memwrite.log 2>&1 &
MW=$!
i=0
until grep -q faulted /tmp/memwrite.log; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "memwrite did not map its buffer"
	sleep 0.1
done
t "memwrite mapped its buffer"
umount /mnt || fail "cannot unmount the share before the migration"
# L1 reads the console for this line, then migrates the VM; the new QEMU
# alone feeds the second serial line (the old one's is null), so the line
# read below comes after the migration.
stty -F /dev/ttyS1 raw -echo || fail "no second serial line"
echo "MIGRATE-READY" >/dev/ttyS0
read -r go </dev/ttyS1
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host0 /mnt ||
	fail "cannot mount the share after the migration (read '$go')"
OUT=/mnt/out
mkdir -p "$OUT"
grep -m1 ' _text$' /proc/kallsyms | cut -d' ' -f1 >"$OUT/text.txt"
t "migrated ($go)"

start_sessiond vmtrace-guest
cat /sys/module/lttng_probe_vmtrace_guest/parameters/vm_uid >"$OUT/vm_uid"
lttng create "$LAB_NAME" --output=/tmp/trace >/dev/null || fail "lttng create"
lttng enable-channel -k --subbuf-size=1M --num-subbuf=4 ch >/dev/null
lttng enable-event -k -c ch vmsync_gh_guest,vmsync_hg_guest,guest_mm_map,guest_mm_unmap,sched_switch,sched_migrate_task,'lttng_statedump_*' >/dev/null ||
	fail "lttng enable-event"
lttng start >/dev/null || fail "lttng start"
t "tracing started, vm_uid $(cat "$OUT/vm_uid")"
memory_window_open
touch /tmp/memwrite-go
wait $MW || fail "memwrite failed: $(cat /tmp/memwrite.log)"
touch "$OUT/win-done"
cp /tmp/memwrite.txt "$OUT/memwrite.txt"
t "memwrite: $(cat "$OUT/memwrite.txt")"
sleep 1
lttng stop >/dev/null
lttng destroy >/dev/null
cp -a /tmp/trace "$OUT/trace"
check_dmesg "$OUT/dmesg.txt"
t "done"
