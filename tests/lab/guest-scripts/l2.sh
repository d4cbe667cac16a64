# L2 (a guest): loads our guest module through lttng-sessiond, traces the
# workload and a user-space vmsync hypercall.
LAB_NAME=$(sed -n 's/.*lab_name=\([^ ]*\).*/\1/p' /proc/cmdline)
. /mnt/common.sh
OUT=/mnt/out
mkdir -p "$OUT"
# The kernel's KASLR base, to name instruction pointers if this guest hangs.
grep -m1 ' _text$' /proc/kallsyms | cut -d' ' -f1 >"$OUT/text.txt"
t "booted, $(grep -c ^processor /proc/cpuinfo) vCPUs"

expect_param_refused lttng-probe-vmtrace-guest period_ms=0 'period_ms=0 refused'
expect_param_refused lttng-probe-vmtrace-guest period_ms=60001 'period_ms=60001 refused'
expect_param_refused lttng-probe-vmtrace-guest hc_nr=12 'hc_nr=12 refused'
start_sessiond vmtrace-guest
cat /sys/module/lttng_probe_vmtrace_guest/parameters/vm_uid >"$OUT/vm_uid"
t "guest module loaded, vm_uid $(cat "$OUT/vm_uid")"

lttng create "$LAB_NAME" --output=/tmp/trace >/dev/null || fail "lttng create"
lttng enable-channel -k --subbuf-size=1M --num-subbuf=4 ch >/dev/null
lttng enable-event -k -c ch vmsync_gh_guest,vmsync_hg_guest,guest_mm_map,guest_mm_unmap,sched_switch,sched_migrate_task,'lttng_statedump_*' >/dev/null ||
	fail "lttng enable-event"
lttng start >/dev/null || fail "lttng start"
/mnt/tools/workload "$OUT/workload.txt" || fail "workload failed"
/mnt/tools/hcall-user >"$OUT/hcall-user.txt" || fail "hcall-user failed"
sleep 2
lttng stop >/dev/null
lttng destroy >/dev/null
cp -a /tmp/trace "$OUT/trace"
check_dmesg "$OUT/dmesg.txt"
t "done"
