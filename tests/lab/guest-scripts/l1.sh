# L1 (the KVM host): traces KVM with our host module while two L2 guests
# boot, run the workload and record their own traces.
LAB_NAME=L1
. /mnt/common.sh
OUT=/mnt/out/l1
mkdir -p "$OUT"
# Variant knobs set by 50-run-l1.sh (LAB_HOST_MODULE, LAB_STRESS, LAB_L1_SMP).
. /mnt/out/lab.conf
# L0 takes L1 for wedged when this stops (50-run-l1.sh).
(while :; do
	touch /mnt/out/l1-heartbeat
	sleep 5
done) &

# QEMU 7.2's TCG mis-emulates guest instruction fetches through 2 MiB
# nested-paging mappings now and then (the L2 triple-faults); with
# transparent huge pages off in L1, KVM maps L2 memory with 4 KiB pages.
echo never >/sys/kernel/mm/transparent_hugepage/enabled
modprobe kvm_amd || fail "kvm_amd did not load"
[ -e /dev/kvm ] || fail "no /dev/kvm"
t "kvm_amd npt=$(cat /sys/module/kvm_amd/parameters/npt) tdp_mmu=$(cat /sys/module/kvm/parameters/tdp_mmu)"

HOST_EVENTS=kvm_x86_entry,kvm_x86_exit,kvm_x86_tdp_fault,kvm_x86_pio,kvm_x86_mmio,kvm_x86_msr,kvm_x86_msr_user,
HOST_EVENTS=${HOST_EVENTS}kvm_x86_inj_virq,kvm_x86_inj_exception,kvm_x86_hypercall,
HOST_EVENTS=${HOST_EVENTS}vmsync_gh_host,vmsync_hg_host,kvm_vm_vcpu_thread,kvm_vm_statedump_vm,kvm_vm_statedump_vcpu,kvm_tdp_mmu_map,
# The memory tracer's handshake: only with the tracer (LAB_MEMTRACER=1
# reserves its pages on L1's command line).
if [ "$LAB_MEMTRACER" = 1 ]; then
	HOST_EVENTS=${HOST_EVENTS}vmtrace_memsync_begin,vmtrace_memsync_end,
fi
# L1 runs under TCG, not KVM: the guest module must refuse to load.
expect_param_refused lttng-probe-vmtrace-guest period_ms=100 'not running under KVM'
if [ "$LAB_HOST_MODULE" = 1 ]; then
	expect_param_refused lttng-probe-vmtrace-host hc_nr=5 'hc_nr=5 refused'
	expect_param_refused lttng-probe-vmtrace-host hc_nr=0x100000000 'hc_nr=0x100000000 refused'
	start_sessiond vmtrace-host
	grep -q '^lttng_probe_vmtrace_vmsync ' /proc/modules || fail "the host module loaded without the vmsync module"
	t "sessiond up with lttng-probe-vmtrace-host"
	# The memory tracer's handshake (docs/memory-tracing.md): L1's kernel
	# reserved the two pages at MEMSYNC_HPA (memmap=8K$ on its command
	# line); the L0 QEMU's plugin watches stores to them.
	expect_param_refused lttng-probe-vmtrace-memsync hpa=0x1000000 'overlaps System RAM'
	expect_param_refused lttng-probe-vmtrace-memsync hpa=$((MEMSYNC_HPA + 1)) 'page-aligned'
	expect_param_refused lttng-probe-vmtrace-memsync period_ms=5 'period_ms=5 refused'
	expect_param_refused lttng-probe-vmtrace-memsync marks=1 'hpa not set'
	if [ "$LAB_MEMTRACER" = 1 ]; then
		modprobe lttng-probe-vmtrace-memsync hpa="$MEMSYNC_HPA" period_ms=50 marks=1 ||
			fail "memsync module did not load"
	fi
else
	# Diagnostic variant: the emulator and KVM without our host module.
	lttng-sessiond -d || fail "lttng-sessiond did not start"
	HOST_EVENTS=
	t "sessiond up without our host module"
fi
# Text symbols (L1 runs without KASLR), to name the instruction pointers
# of a stalled L1 or a hung L2 (same kernel): tests/lab/resolve-rips.py.
grep ' [tT] ' /proc/kallsyms | gzip -1 >"$OUT/kallsyms.gz"

# ---- live: lttng-relayd here, the host's live session streams to it and
# the guests' (l2a, l2b) over their network; L0 attaches vmtrace top to
# them through a port forward (50-run-l1.sh, check_live.py). The live
# sessions record what the live view needs, apart from the offline ones.
up_network() {	# address
	local dev
	modprobe virtio_net || fail "virtio_net did not load"
	ip link set lo up || fail "no loopback"
	dev=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
	[ -n "$dev" ] || fail "no network device"
	ip addr add "$1/24" dev "$dev" && ip link set "$dev" up || fail "cannot configure $dev"
}
LIVE_EVENTS=kvm_x86_entry,kvm_x86_exit,kvm_x86_hypercall,vmsync_gh_host,vmsync_hg_host,kvm_vm_vcpu_thread,
LIVE_EVENTS=${LIVE_EVENTS}kvm_vm_statedump_vm,kvm_vm_statedump_vcpu,sched_switch,sched_migrate_task,lttng_statedump_*
LIVE_OUT=/mnt/out/live
LAB_LIVE=${LAB_LIVE:-1}
if [ "$LAB_LIVE" = 1 ]; then
	up_network 10.0.2.15
	# Its live port listens on localhost alone by default: L0's port
	# forward comes in through the NIC.
	lttng-relayd -d -o /tmp/relayd -L tcp://0.0.0.0:5344 || fail "lttng-relayd did not start"
	i=0
	until lttng create live --live=1000000 --set-url=net://127.0.0.1 >/tmp/live-create.log 2>&1; do
		i=$((i + 1))
		[ $i -lt 20 ] || fail "lttng create live: $(cat /tmp/live-create.log)"
		sleep 0.5
	done
	lttng enable-channel -k -s live --subbuf-size=1M --num-subbuf=8 ch >/dev/null || fail "live channel"
	lttng enable-event -k -s live -c ch "$LIVE_EVENTS" >/dev/null || fail "lttng enable-event (live)"
	mkdir -p "$LIVE_OUT"
	/mnt/tools/clock-pair "$LIVE_OUT/l0-clock" "$LIVE_OUT/clock-pairs.txt" /tmp/clock-pair.stop &
	touch "$LIVE_OUT/relayd-up"
	t "relay daemon up, live session created"
fi

lttng create l1 --output=/tmp/trace-l1 >/dev/null || fail "lttng create"
lttng enable-channel -k --subbuf-size=4M --num-subbuf=8 ch >/dev/null
lttng enable-event -k -c ch "${HOST_EVENTS}sched_switch,sched_migrate_task,lttng_statedump_*" >/dev/null ||
	fail "lttng enable-event"

L2=/mnt/l2
# Known product UUIDs: each guest module must derive its vm_uid from them.
UUID_A=1a2b3c4d-0001-4a00-8000-00000000000a
UUID_B=1a2b3c4d-0002-4b00-8000-00000000000b
# Each L2 runs pinned to one L1 CPU, so that no two L1 CPUs walk one
# guest's (or its NPT) tables at once under QEMU 7.2's multi-threaded TCG.
# L1 has one CPU by default (50-run-l1.sh): both L2s then share it.
# Environment: L2_SHARE (the 9p share's directory under /tmp, default the
# name; the migrated guest's two QEMUs share one), L2_SMP, L2_MEM,
# L2_APPEND (more kernel parameters).
l2() {	# name uuid l1-cpu loglevel [more QEMU arguments]
	local name=$1 uuid=$2 cpu=$3 loglevel=$4 share=/tmp/${L2_SHARE:-$1} live=
	shift 4
	# L2_LIVE=1: a network (QEMU's user mode: 10.0.2.2 is L1's loopback)
	# and lab_live, for l2.sh's live session to L1's relay daemon.
	if [ "${L2_LIVE:-0}" = 1 ]; then
		set -- "$@" -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=
		live=lab_live
	fi
	mkdir -p "$share/out"
	cp /mnt/common.sh "$share/"
	[ -f "$share/l2.sh" ] || cp /mnt/l2.sh "$share/"
	cp -a /mnt/tools "$share/"
	# A hung guest is killed, so that L1 still reports what it has. Its
	# monitor (fifos /tmp/<name>.mon.in/.out) serves the hang diagnosis.
	mkfifo "/tmp/$name.mon.in" "/tmp/$name.mon.out"
	timeout 900 taskset -c "$cpu" "$L2/lib/ld-linux-x86-64.so.2" --library-path "$L2/lib" "$L2/qemu-system-x86_64" \
		-name "$name,process=qemu-$name" -uuid "$uuid" -enable-kvm -cpu host \
		-smp "${L2_SMP:-2}" -m "${L2_MEM:-320}" \
		-nodefaults -display none -serial "file:/tmp/$name.console" -monitor "pipe:/tmp/$name.mon" \
		-L "$L2/fw" -kernel "$L2/vmlinuz" -initrd "$L2/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 loglevel=$loglevel edd=off lab_script=l2.sh lab_name=${share#/tmp/} $live ${L2_APPEND:-}" \
		-no-reboot -device virtio-rng-pci \
		-virtfs "local,path=$share,mount_tag=host0,security_model=none,id=host0" \
		"$@" 2>"/tmp/$name.qemu-err"
	echo $? >"/tmp/$name.qemu-rc"
}

# The memory tracer records inside a window that l2a asks for around its
# workload (l2.sh): L1 opens it when l2a's request file appears and closes
# it when l2a says the workload is done.
# One window at a time (the module's switch is global): a guest waits for
# the other's window to close.
memory_window() {	# guest
	local d=/tmp/$1 i=0
	until [ -f "$d/out/win-req" ]; do
		[ -f "/tmp/$1.qemu-rc" ] && return 0
		sleep 0.1
	done
	until mkdir /tmp/memory-window.lock 2>/dev/null; do
		sleep 0.1
	done
	echo 1 >/sys/module/lttng_probe_vmtrace_memsync/parameters/window
	touch "$d/win-open"
	until [ -f "$d/out/win-done" ] || [ -f "/tmp/$1.qemu-rc" ]; do
		sleep 0.1
	done
	echo 0 >/sys/module/lttng_probe_vmtrace_memsync/parameters/window
	rmdir /tmp/memory-window.lock
	t "memory window of $1 closed"
}

# One command to a guest's human monitor; prints what it answered until
# it went quiet for 2 s (the monitor's output fifo never ends).
monitor() {	# qemu-name command
	local line
	echo "$2" >"/tmp/$1.mon.in"
	while IFS= read -r -t 2 line; do
		echo "$line"
	done <"/tmp/$1.mon.out" | tr -d '\r'
}

# l2m, the guest migrated onto the traced host (l2-migrate.sh): it boots in
# l2m-src, maps its buffer, unmounts its share and says MIGRATE-READY on
# its console; L1 then starts l2m with -incoming, migrates l2m-src into it
# while the host session records, stops l2m-src and tells the guest on its
# second serial line (null in l2m-src) that it runs on the new QEMU. What
# went wrong lands in /tmp/l2m.migrate-failed.
UUID_M=1a2b3c4d-0004-4d00-8000-00000000000d
L2_TROUBLE='Kernel panic|Oops|BUG:|WARNING:|general protection'
migrated_guest() {
	local i=0 status= t0
	export L2_SHARE=l2m L2_SMP=1 L2_MEM=256 L2_APPEND=lab_detach
	mkdir -p /tmp/l2m
	cp /mnt/l2-migrate.sh /tmp/l2m/l2.sh
	l2 l2m-src "$UUID_M" 0 4 -serial null &
	until grep -q MIGRATE-READY /tmp/l2m-src.console 2>/dev/null; do
		if [ -f /tmp/l2m-src.qemu-rc ]; then
			echo "l2m-src ended before its migration (QEMU exit $(cat /tmp/l2m-src.qemu-rc))" >/tmp/l2m.migrate-failed
			# A script that failed leaves its status in the share
			# (init.sh); a guest kernel that reset (a triple fault:
			# QEMU -no-reboot exits 0) without a word broke under
			# the emulator before our guest module was loaded.
			if [ ! -f /tmp/l2m/l2.sh.rc ] &&
				! grep -qE "$L2_TROUBLE" /tmp/l2m-src.console 2>/dev/null; then
				echo "l2m-src reset before its script ended, with no kernel message (QEMU exit $(cat /tmp/l2m-src.qemu-rc))" >/tmp/l2m.emulator-failed
			fi
			return
		fi
		i=$((i + 1))
		if [ $i -ge 6000 ]; then
			echo "l2m-src never became ready to migrate" >/tmp/l2m.migrate-failed
			return
		fi
		sleep 0.1
	done
	mkfifo /tmp/l2m.go.in /tmp/l2m.go.out
	l2 l2m "$UUID_M" 0 4 -serial pipe:/tmp/l2m.go -incoming unix:/tmp/l2m.mig &
	i=0
	until [ -S /tmp/l2m.mig ]; do
		i=$((i + 1))
		if [ -f /tmp/l2m.qemu-rc ] || [ $i -ge 600 ]; then
			echo "l2m did not listen for the migration: $(cat /tmp/l2m.qemu-err)" >/tmp/l2m.migrate-failed
			return
		fi
		sleep 0.1
	done
	t0=$(cut -d' ' -f1 /proc/uptime)
	monitor l2m-src "migrate_set_parameter max-bandwidth 1G" >/dev/null
	monitor l2m-src "migrate -d unix:/tmp/l2m.mig" >/dev/null
	i=0
	until [ "$status" = completed ]; do
		status=$(monitor l2m-src "info migrate" | sed -n 's/^Migration status: *//p' | tail -n1)
		i=$((i + 1))
		case $status in
		completed) continue ;;
		failed | cancelled) ;;
		*) [ $i -ge 300 ] || continue ;;
		esac
		echo "migration of l2m-src into l2m: status '$status' after $i polls" >/tmp/l2m.migrate-failed
		return
	done
	mkdir -p /tmp/l2m/out
	monitor l2m-src "info migrate" >/tmp/l2m/out/migrate.txt
	monitor l2m-src quit >/dev/null
	echo go >/tmp/l2m.go.in
	t "l2m migrated from l2m-src in $(awk "BEGIN { print $(cut -d' ' -f1 /proc/uptime) - $t0 }") s"
	memory_window l2m
	wait
}

# l2a exists before tracing starts (the statedump must describe it), l2b
# is created while tracing (live identity events).
mkdir -p /tmp/l2a
[ "$LAB_HOST_MODULE" = 1 ] && touch /tmp/l2a/memwindow
L2_LIVE=$LAB_LIVE l2 l2a "$UUID_A" 0 4 &
PA=$!
[ "$LAB_HOST_MODULE" = 1 ] && memory_window l2a &
i=0
until ls -l /proc/[0-9]*/fd 2>/dev/null | grep -q 'anon_inode:kvm-vm'; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "l2a created no VM"
	sleep 0.1
done
# Once l2a's kernel runs its script its memory is mapped: the host
# statedump must then describe those mappings (kvm_tdp_mmu_map op 4).
i=0
until [ -f /tmp/l2a/out/vm_uid ] || [ -f /tmp/l2a.qemu-rc ]; do
	i=$((i + 1))
	[ $i -lt 3000 ] || fail "l2a did not boot"
	sleep 0.1
done
# The live session first: each session's start runs the host module's VM
# statedump, which every active session records; l1's must hold only its
# own, between its lttng_statedump_start and _end (r51).
[ "$LAB_LIVE" = 0 ] || lttng start live >/dev/null || fail "lttng start live"
lttng start >/dev/null || fail "lttng start"
t "tracing started"
L2_LIVE=$LAB_LIVE l2 l2b "$UUID_B" $((LAB_L1_SMP > 1 ? 1 : 0)) 4 &
PB=$!
# When both guests' workloads are done, L0 stops the live view (it has
# read up to then), and the guests end their live sessions after it.
# Until both live guests wrote out/$1, or ended.
live_guests_wait() {	# file
	local g
	for g in l2a l2b; do
		until [ -f "/tmp/$g/out/$1" ] || [ -f "/tmp/$g.qemu-rc" ]; do
			sleep 0.5
		done
	done
}
live_end() {
	local i=0
	# The view attaches once every live session has started: waiting for
	# them (--wait), babeltrace2 2.0.4's src.ctf.lttng-live failed in two
	# of the three attaches to a guest's session seen here ("Error
	# updating trace metadata", as the session appeared).
	live_guests_wait live-started
	touch "$LIVE_OUT/streaming"
	live_guests_wait live-done
	touch "$LIVE_OUT/workload-done"
	until [ -f "$LIVE_OUT/top.rc" ] || [ $i -ge 400 ]; do
		i=$((i + 1))
		sleep 0.5
	done
	touch /tmp/l2a/live-stop /tmp/l2b/live-stop
}
[ "$LAB_LIVE" = 0 ] || live_end &
GUESTS="l2a l2b"
if [ "$LAB_MEMTRACER" = 1 ]; then
	GUESTS="$GUESTS l2m"
	migrated_guest &
	PM=$!
fi
wait $PA
wait $PB
[ -z "${PM:-}" ] || wait "$PM"
t "the L2 guests exited"
if [ "$LAB_LIVE" = 1 ]; then
	lttng destroy live >/dev/null || fail "lttng destroy live"
	touch /tmp/clock-pair.stop
	# the relay daemon's copies: what the live view read, for the
	# offline analysis of the same sessions (check_live.py)
	for h in l1 l2a l2b; do
		d=$(ls -d /tmp/relayd/"$h"/live-* 2>/dev/null | head -n1)
		[ -n "$d" ] || fail "the relay daemon holds no live session of $h: $(ls -R /tmp/relayd 2>&1 | head -n 20)"
		cp -a "$d" "$LIVE_OUT/trace-$h"
	done
	t "live sessions ended: $(du -sh /tmp/relayd | cut -f1) in the relay daemon"
fi
if [ -f /tmp/l2m.migrate-failed ]; then
	mkdir -p /mnt/out/l2m
	cp /tmp/l2m-src.console /mnt/out/l2m/console-src.txt 2>/dev/null
	cp /tmp/l2m.console /mnt/out/l2m/console.txt 2>/dev/null
	if [ -f /tmp/l2m.emulator-failed ]; then
		cp /tmp/l2m-src.console /mnt/out/l2m/console.txt 2>/dev/null
		echo "$(cat /tmp/l2m.emulator-failed) (consoles in out/l2m)" >/mnt/out/hang
		dmesg >"$OUT/dmesg.txt"
		exit 0
	fi
	echo "--- l2m-src console (last lines)"
	tail -n 20 /tmp/l2m-src.console 2>/dev/null | tr -d '\r'
	fail "$(cat /tmp/l2m.migrate-failed) (consoles in out/l2m)"
fi
lttng stop >/dev/null
lttng destroy >/dev/null
# A guest killed by its watchdog hung: report it (50-run-l1.sh) without
# copying the long trace it left.
for g in $GUESTS; do
	if [ "$(cat "/tmp/$g.qemu-rc")" = 124 ]; then
		for h in $GUESTS; do
			mkdir -p "/mnt/out/$h"
			cp "/tmp/$h.console" "/mnt/out/$h/console.txt"
			cp "/tmp/$h/l2.sh.log" "/mnt/out/$h/l2.log" 2>/dev/null
			cat "/tmp/$h.qemu-rc" >"/mnt/out/$h/qemu.rc"
		done
		echo "$g hung and was killed by L1's watchdog" >/mnt/out/hang
		dmesg >"$OUT/dmesg.txt"
		exit 0
	fi
done
cp -a /tmp/trace-l1 "$OUT/trace"
for g in $GUESTS; do
	mkdir -p "/mnt/out/$g"
	cp -a "/tmp/$g/out/." "/mnt/out/$g/"
	cp "/tmp/$g.console" "/mnt/out/$g/console.txt"
	cp "/tmp/$g.qemu-err" "/mnt/out/$g/qemu-stderr.txt"
	cp "/tmp/$g/l2.sh.log" "/mnt/out/$g/l2.log" 2>/dev/null
	cp "/tmp/$g/l2.sh.rc" "/mnt/out/$g/l2.rc" 2>/dev/null
	echo "$(cat /tmp/$g.qemu-rc)" >"/mnt/out/$g/qemu.rc"
done
echo "$UUID_A" >"$OUT/uuid-l2a"
echo "$UUID_B" >"$OUT/uuid-l2b"
if [ -d /tmp/l2m ]; then
	echo "$UUID_M" >"$OUT/uuid-l2m"
	cp /tmp/l2m-src.console /mnt/out/l2m/console-src.txt
	cp /tmp/l2m-src.qemu-err /mnt/out/l2m/qemu-src-stderr.txt
	cp /tmp/l2m-src.qemu-rc /mnt/out/l2m/qemu-src.rc
fi
# An L2 whose kernel died before its script started (a triple fault under
# the emulator: tests/lab/README.md) never ran our guest module: report an
# emulator failure at once, without the stress part.
for g in $GUESTS; do
	if [ ! -f "/tmp/$g/l2.sh.log" ]; then
		echo "$g died before its script started (QEMU exit $(cat "/tmp/$g.qemu-rc"))" >/mnt/out/hang
		dmesg >"$OUT/dmesg.txt"
		exit 0
	fi
done

if [ "$LAB_STRESS" = 0 ]; then
	check_dmesg "$OUT/dmesg.txt"
	t "done"
	exit 0
fi

# Where a hung guest is: its QEMU's threads (state, CPU time, kernel stack
# in L1) and its vCPUs' registers, twice; tests/lab/resolve-rips.py names
# the instruction pointers (the guest's _text is in its out/text.txt).
diagnose_l2() {	# name
	d=/mnt/out/$1
	mkdir -p "$d"
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = "qemu-$1" ] && qp=${p#/proc/}
	done
	{
		for i in 1 2; do
			echo "==== sample $i, L1 uptime $(cut -d' ' -f1 /proc/uptime)"
			for tk in /proc/"$qp"/task/*; do
				echo "-- thread ${tk##*/} $(cat "$tk/comm") state/utime/stime $(cut -d' ' -f3,14,15 "$tk/stat") wchan $(cat "$tk/wchan")"
				cat "$tk/stack"
			done
			echo "info registers -a" >"/tmp/$1.mon.in"
			timeout 5 cat "/tmp/$1.mon.out"
			sleep 5
		done
		echo "==== L1 dmesg"
		dmesg | tail -n 40
	} >"$d/hang-diag.txt" 2>&1
}

# ---- overhead benchmark and load/unload robustness (with l2s) ----------
# A guest that stops answering is a hang: keep its console for the
# diagnosis and mark it, so that the lab reports an emulator hang (see
# 50-run-l1.sh) rather than a failed check.
wait_file() {
	i=0
	until [ -f "$1" ]; do
		# l2s's script ended without it: a failed step, not a hang.
		if [ -f "$l2s_dir/l2.sh.rc" ]; then
			sleep 1
			[ -f "$1" ] && break
			dmesg >"$OUT/dmesg.txt"
			mkdir -p /mnt/out/l2s
			cp /tmp/l2s.console /mnt/out/l2s/console.txt 2>/dev/null
			cp "$l2s_dir/l2.sh.log" /mnt/out/l2s/l2.log 2>/dev/null
			fail "l2s's script ended (exit $(cat "$l2s_dir/l2.sh.rc")) while L1 waited for $1: $(tail -n 3 "$l2s_dir/l2.sh.log" | tr '\n' ' ')"
		fi
		i=$((i + 1))
		if [ $i -ge 6000 ]; then
			diagnose_l2 l2s
			dmesg >"$OUT/dmesg.txt"
			cp /tmp/l2s.console /mnt/out/l2s/console.txt 2>/dev/null
			cp /tmp/l2s/l2.sh.log /mnt/out/l2s/l2.log 2>/dev/null
			echo "l2s stopped answering while L1 waited for $1" >/mnt/out/hang
			fail "timed out waiting for $1"
		fi
		sleep 0.1
	done
}
# Host module commands; none in the variant without our host module.
hostmod() { [ "$LAB_HOST_MODULE" = 0 ] || "$@"; }
BENCH_EVENTS=kvm_x86_entry,kvm_x86_exit
[ "$LAB_HOST_MODULE" = 1 ] || BENCH_EVENTS=sched_switch
l2s_dir=/tmp/l2s
mkdir -p "$l2s_dir"
cp /mnt/l2-stress.sh "$l2s_dir/l2.sh"
# l2s is the guest that hung in past runs: its console shows its whole boot.
l2 l2s 1a2b3c4d-0003-4c00-8000-00000000000c 0 7 &
PS=$!
wait_file "$l2s_dir/ready"
# Three rounds of: our entry/exit events recorded (1), session stopped (2),
# host module unloaded (3); TCG timing noise is large, the check takes
# the median of each.
for r in 1 2 3; do
	lttng create bench --output="/tmp/trace-bench-$r" >/dev/null
	lttng enable-event -k "$BENCH_EVENTS" >/dev/null
	lttng start >/dev/null
	touch "$l2s_dir/go-$r-1"
	wait_file "$l2s_dir/done-$r-1"
	lttng stop >/dev/null
	touch "$l2s_dir/go-$r-2"
	wait_file "$l2s_dir/done-$r-2"
	lttng destroy >/dev/null
	hostmod rmmod lttng_probe_vmtrace_host || fail "host module did not unload"
	touch "$l2s_dir/go-$r-3"
	wait_file "$l2s_dir/done-$r-3"
	[ "$LAB_MEMTRACER" = 0 ] || echo 1 >/sys/module/lttng_probe_vmtrace_memsync/parameters/window
	touch "$l2s_dir/go-$r-4"
	wait_file "$l2s_dir/done-$r-4"
	[ "$LAB_MEMTRACER" = 0 ] || echo 0 >/sys/module/lttng_probe_vmtrace_memsync/parameters/window
	hostmod modprobe lttng-probe-vmtrace-host || fail "host module did not reload"
done
hostmod rmmod lttng_probe_vmtrace_host || fail "host module did not unload"
t "benchmark done"

lttng create stress --output=/tmp/trace-stress >/dev/null
lttng enable-event -k sched_switch,sched_migrate_task >/dev/null
lttng start >/dev/null
touch "$l2s_dir/go-storm"
for i in 1 2 3 4 5 6 7 8; do
	hostmod modprobe lttng-probe-vmtrace-host || fail "host module reload $i failed"
	sleep 0.3
	hostmod rmmod lttng_probe_vmtrace_host || fail "host module unload $i failed"
done
if [ "$LAB_HOST_MODULE" = 1 ]; then
	modprobe lttng-probe-vmtrace-host || fail "host module reload failed"
	lttng enable-event -k kvm_x86_exit >/dev/null
	rmmod lttng_probe_vmtrace_host 2>/dev/null && fail "host module unloaded while a session records its events"
	echo "UNLOAD-REFUSED-WHILE-TRACED host"
fi
lttng destroy >/dev/null
wait_file "$l2s_dir/done-storm"
wait $PS
mkdir -p /mnt/out/l2s
cp -a "$l2s_dir/out/." /mnt/out/l2s/
cp "$l2s_dir/l2.sh.log" /mnt/out/l2s/l2.log 2>/dev/null
cp "$l2s_dir/l2.sh.rc" /mnt/out/l2s/l2.rc 2>/dev/null
cp /tmp/l2s.console /mnt/out/l2s/console.txt
cp /tmp/l2s.qemu-err /mnt/out/l2s/qemu-stderr.txt
[ "$(cat "$l2s_dir/l2.sh.rc" 2>/dev/null)" = 0 ] || fail "l2s failed"
t "robustness done"

check_dmesg "$OUT/dmesg.txt"
t "done"
