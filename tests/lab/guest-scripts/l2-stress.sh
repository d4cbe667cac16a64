# L2 "l2s": the guest side of the overhead benchmark and of the module
# load/unload robustness test; L1 drives the phases through files on this
# guest's share (go-*, done-*).
LAB_NAME=l2s
. /mnt/common.sh
OUT=/mnt/out
mkdir -p "$OUT"
# The kernel's KASLR base, to name instruction pointers if this guest hangs.
grep -m1 ' _text$' /proc/kallsyms | cut -d' ' -f1 >"$OUT/text.txt"
N=${BENCH_CALLS:-8000}

wait_go() {
	i=0
	until [ -f "/mnt/go-$1" ]; do
		i=$((i + 1))
		[ $i -lt 6000 ] || fail "no go-$1 from L1"
		sleep 0.1
	done
}

touch /mnt/ready
# Overhead: the same exit-heavy loop while L1 records our events (1), with
# the events disabled (2), with the host module unloaded (3) and then with
# the memory tracer's window open (4: L0's plugin records every access in
# guest mode; the same as 3 without the tracer), 3 rounds.
for r in 1 2 3; do
	for phase in 1 2 3 4; do
		wait_go "$r-$phase"
		/mnt/tools/hcall-user 0x564d5359 "$N" >"$OUT/bench-$r-$phase.txt" ||
			fail "bench $r-$phase"
		touch "/mnt/done-$r-$phase"
	done
done

# Robustness: load and unload the guest module while its events are
# traced and while an exit storm runs on every vCPU.
wait_go storm
start_sessiond vmtrace-guest
for c in 0 1; do
	taskset -c $c /mnt/tools/hcall-user 0x564d5359 20000 >/dev/null &
done
# A session that records our events pins the module (checked below), so
# the cycling runs under a session recording other events.
lttng create stress --output=/tmp/trace-stress >/dev/null || fail "lttng create"
lttng enable-event -k sched_switch,sched_migrate_task >/dev/null
lttng start >/dev/null
for i in 1 2 3 4 5 6 7 8; do
	rmmod lttng_probe_vmtrace_guest 2>/dev/null || true
	modprobe lttng-probe-vmtrace-guest period_ms=1 || fail "reload $i failed"
	sleep 0.3
done
# guest_mm_map is the guest module's event, vmsync_gh_guest the vmsync
# module's (which the guest module also holds).
lttng enable-event -k guest_mm_map,vmsync_gh_guest >/dev/null
rmmod lttng_probe_vmtrace_guest 2>/dev/null && fail "module unloaded while a session records its events"
rmmod lttng_probe_vmtrace_vmsync 2>/dev/null && fail "vmsync module unloaded while a session records its events"
echo "UNLOAD-REFUSED-WHILE-TRACED guest"
lttng destroy >/dev/null
rmmod lttng_probe_vmtrace_guest || fail "final unload failed"
rmmod lttng_probe_vmtrace_vmsync || fail "vmsync module did not unload once unused"
wait
touch /mnt/done-storm
check_dmesg "$OUT/dmesg.txt"
t "done"
