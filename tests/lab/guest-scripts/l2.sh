# L2 (a guest): loads our guest module through lttng-sessiond, traces the
# workload and a user-space vmsync hypercall.
LAB_NAME=$(sed -n 's/.*lab_name=\([^ ]*\).*/\1/p' /proc/cmdline)
. /mnt/common.sh
OUT=/mnt/out
mkdir -p "$OUT"
# The kernel's KASLR base, to name instruction pointers if this guest hangs.
grep -m1 ' _text$' /proc/kallsyms | cut -d' ' -f1 >"$OUT/text.txt"
grep -m1 ' _etext$' /proc/kallsyms | cut -d' ' -f1 >"$OUT/etext.txt"
t "booted, $(grep -c ^processor /proc/cpuinfo) vCPUs"

# CPU hotplug (l2a): the guest module loads while vCPU 1 is offline; vCPU 1
# must start its handshakes when it comes up and stop them when it goes.
# lttng_logger markers (/proc/lttng-logger) bracket each phase in a session
# of its own, before the main one (the module is not reloaded: its cnt
# keeps growing, as the host's pairing wants).
mark() { printf '%s' "$1" >/proc/lttng-logger; }
hotplug() {
	cpu1=/sys/devices/system/cpu/cpu1/online
	lttng create hotplug --output=/tmp/trace-hotplug >/dev/null || fail "lttng create hotplug"
	lttng enable-event -k vmsync_gh_guest,vmsync_hg_guest,lttng_logger >/dev/null || fail "lttng enable-event hotplug"
	lttng start >/dev/null
	mark lab-cpu1-down
	sleep 1
	mark lab-cpu1-coming
	echo 1 >$cpu1 || fail "cannot online cpu1"
	mark lab-cpu1-up
	sleep 2
	mark lab-cpu1-going
	echo 0 >$cpu1 || fail "cannot offline cpu1 again"
	mark lab-cpu1-gone
	sleep 1
	mark lab-end
	lttng stop >/dev/null
	lttng destroy >/dev/null
	echo 1 >$cpu1 || fail "cannot online cpu1 again"
	cp -a /tmp/trace-hotplug "$OUT/trace-hotplug"
	t "cpu1 hotplug traced"
}

expect_param_refused lttng-probe-vmtrace-guest period_ms=0 'period_ms=0 refused'
expect_param_refused lttng-probe-vmtrace-guest period_ms=60001 'period_ms=60001 refused'
expect_param_refused lttng-probe-vmtrace-guest hc_nr=12 'hc_nr=12 refused'
if [ "$LAB_NAME" = l2a ]; then
	echo 0 >/sys/devices/system/cpu/cpu1/online || fail "cannot offline cpu1"
fi
start_sessiond vmtrace-guest
cat /sys/module/lttng_probe_vmtrace_guest/parameters/vm_uid >"$OUT/vm_uid"
t "guest module loaded, vm_uid $(cat "$OUT/vm_uid")"

if [ "$LAB_NAME" = l2a ]; then
	hotplug
fi
# lab_live (l1.sh): a live session to L1's relay daemon as well, with what
# the live view needs; created first, so that the session below stays the
# current one.
LIVE=
if grep -q ' lab_live' /proc/cmdline; then
	LIVE=1
	modprobe virtio_net || fail "virtio_net did not load"
	ip link set lo up || fail "no loopback"
	dev=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
	[ -n "$dev" ] || fail "no network device"
	ip addr add 10.0.2.15/24 dev "$dev" && ip link set "$dev" up || fail "cannot configure $dev"
	lttng create live --live=1000000 --set-url=net://10.0.2.2 >/tmp/live-create.log 2>&1 ||
		fail "lttng create live (L1's relay daemon at 10.0.2.2): $(cat /tmp/live-create.log)"
	lttng enable-channel -k -s live --subbuf-size=1M --num-subbuf=4 ch >/dev/null || fail "live channel"
	lttng enable-event -k -s live -c ch vmsync_gh_guest,vmsync_hg_guest,sched_switch,sched_migrate_task,'lttng_statedump_*' >/dev/null ||
		fail "lttng enable-event (live)"
fi
lttng create "$LAB_NAME" --output=/tmp/trace >/dev/null || fail "lttng create"
lttng enable-channel -k --subbuf-size=1M --num-subbuf=4 ch >/dev/null
lttng enable-event -k -c ch vmsync_gh_guest,vmsync_hg_guest,guest_mm_map,guest_mm_unmap,sched_switch,sched_migrate_task,'lttng_statedump_*' >/dev/null ||
	fail "lttng enable-event"
lttng start >/dev/null || fail "lttng start"
if [ -n "$LIVE" ]; then
	lttng start live >/dev/null || fail "lttng start live"
	touch "$OUT/live-started"
	t "live session streaming to L1"
fi
# l2a writes a known buffer inside the memory tracer's window (l1.sh
# opens it on request): a short program, so that the window stays small.
if [ -f /mnt/memwindow ]; then
	# The same program with the window closed: the tracer's cost per
	# access is the ratio of the two runs' times per store.
	/mnt/tools/memwrite "$OUT/memwrite-closed.txt" || fail "memwrite (window closed) failed"
	memory_window_open
	/mnt/tools/memwrite "$OUT/memwrite.txt" || fail "memwrite failed"
	touch "$OUT/win-done"
fi
/mnt/tools/workload "$OUT/workload.txt" || fail "workload failed"
/mnt/tools/hcall-user >"$OUT/hcall-user.txt" || fail "hcall-user failed"
# l2a reads what KVM and QEMU emulate and writes down the values it got:
# the replay log must hold the same ones in the same order (60-check.py).
if [ "$LAB_NAME" = l2a ]; then
	modprobe msr || fail "msr module did not load"
	/mnt/tools/nondet-reads "$OUT/nondet-reads.txt" || fail "nondet-reads failed"
	t "nondet-reads: $(grep -c . "$OUT/nondet-reads.txt") lines"
fi
sleep 2
lttng stop >/dev/null
lttng destroy >/dev/null
cp -a /tmp/trace "$OUT/trace"

# A KVM guest that is also a KVM host (the L1 of nested virtualization):
# with kvm_amd loaded (L1 offers SVM to its guests), the host module loads
# beside the guest module, both register their events, and the guest's
# handshakes go on.
if [ "$LAB_NAME" = l2b ]; then
	if modprobe kvm_amd 2>"$OUT/kvm_amd.err"; then
		modprobe lttng-probe-vmtrace-host || fail "host module did not load beside the guest module"
		for m in lttng_probe_vmtrace_vmsync lttng_probe_vmtrace_host lttng_probe_vmtrace_guest; do
			grep -q "^$m " /proc/modules || fail "$m not loaded"
		done
		lttng list -k >"$OUT/both-events.txt" || fail "lttng list -k"
		lttng create both --output=/tmp/trace-both >/dev/null || fail "lttng create both"
		lttng enable-event -k vmsync_gh_guest,vmsync_hg_guest,vmsync_gh_host,vmsync_hg_host,kvm_x86_entry,guest_mm_map >/dev/null ||
			fail "lttng enable-event (host and guest)"
		lttng start >/dev/null
		sleep 1
		lttng stop >/dev/null
		lttng destroy >/dev/null
		cp -a /tmp/trace-both "$OUT/trace-both"
		rmmod lttng_probe_vmtrace_host || fail "host module did not unload"
		rmmod kvm_amd
		echo "BOTH-MODULES loaded" >"$OUT/both.txt"
	else
		echo "BOTH-MODULES skipped: kvm_amd does not load here ($(cat "$OUT/kvm_amd.err"))" >"$OUT/both.txt"
	fi
	t "$(cat "$OUT/both.txt")"
fi
# The live view on L0 stops before the live sessions end: L1 says when
# (l1.sh, live_end); stop waits until the relay daemon has every packet.
if [ -n "$LIVE" ]; then
	touch "$OUT/live-done"
	# l2a waits here minutes for l2b: a slow poll (each is a fork and an
	# exec in a nested guest, taken from the CPU the other guests share).
	i=0
	until [ -f /mnt/live-stop ] || [ $i -ge 600 ]; do
		i=$((i + 1))
		sleep 0.5
	done
	lttng stop live >/dev/null && lttng destroy live >/dev/null || fail "lttng destroy live"
	t "live session destroyed"
fi
check_dmesg "$OUT/dmesg.txt"
t "done"
