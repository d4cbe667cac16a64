#!/bin/bash
# Boots L1 under QEMU TCG with an emulated SVM CPU with nested paging; L1
# runs guest-scripts/l1.sh, which starts the two L2 guests. Results land in
# $LAB_CACHE/share/out.
#
# Variants (for telling the emulator's failures from ours, README.md):
#   LAB_L1_CPU      QEMU -cpu of L1 (default qemu64,+svm,+npt)
#   LAB_L1_ACCEL    QEMU -accel of L1 (default tcg,thread=multi)
#   LAB_L1_SMP      L1's vCPUs (default 1, below)
#   LAB_L1_APPEND   more kernel parameters for L1 (default tsc=reliable, below)
#   LAB_HOST_MODULE 0: L1 never loads our host module (default 1)
#   LAB_STRESS      0: no benchmark and no load/unload storm with l2s (default 1)
#   LAB_QEMU_TIMEOUT  seconds before L1 counts as hung (default 1500; a stalled L1 is stopped sooner)
#   LAB_HEARTBEAT_S   seconds without L1's heartbeat before L1 counts as wedged (default 90)
#   LAB_MEMTRACER   0: no memory tracer on L1's QEMU (default 1: the plugin of
#                   $VMTRACE_BUILD_DIR, default build/, records L1's accesses
#                   in the windows l1.sh opens, under an lttng-ust session here)
#   LAB_MEMTRACE_SAMPLE  the plugin's 1-in-N sampling (default 16; 64 makes
#                   the small recording of examples/memory-recording)
#   LAB_LIVE        0: no live view (default 1: L1's relay daemon, live
#                   sessions, vmtrace top here; README.md "The live view")
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_env

S=$LAB_CACHE/share
L1_MEM_MB=${L1_MEM_MB:-2048}
L1_CPU=${LAB_L1_CPU:-qemu64,+svm,+npt}
L1_ACCEL=${LAB_L1_ACCEL:-tcg,thread=multi}
# One vCPU: with two, QEMU 7.2's TCG broke a nested guest or L1 itself
# in 7 of 10 runs, with one in none of 7 (tests/lab/README.md,
# "Reliability"). Both L2s then share L1's CPU.
L1_SMP=${LAB_L1_SMP:-1}
# TCG's TSC is the host's, the same on every vCPU, but a qemu64 CPU has no
# invariant-TSC flag, so L1 would call it unsynchronized: L1's clock would
# be the emulated HPET (every read an exit to QEMU's main loop, under its
# big lock), and KVM would re-base each L2 vCPU's TSC whenever its thread
# is scheduled in. tsc=reliable keeps L1 on the TSC: the lab runs about
# twice as fast.
L1_APPEND=${LAB_L1_APPEND-tsc=reliable}
# Kernel complaints that make a hang ours rather than the emulator's (a
# stall or a soft lockup is a symptom of both: it gets the diagnosis).
L1_TROUBLE='Oops|BUG:|WARNING:|general protection'
CONSOLE=$LAB_CACHE/l1-console.log
DIAG=$LAB_CACHE/l1-diag.txt
MON=$LAB_CACHE/l1-monitor.sock
QLOG=$LAB_CACHE/l1-qemu.log
rm -rf "$S/out" "$S"/*.sh.log "$S"/*.sh.rc "$DIAG" "$MON" "$QLOG"
mkdir -p "$S/out"
echo "$L1_MEM_MB" >"$S/out/l1-mem-mb"
# The two pages L1 reserves for the memory tracer's handshake and window
# controls: below L1's 2 GiB of RAM (QEMU 7.2 gives wrong physical
# addresses above 4 GiB), page aligned.
MEMSYNC_HPA=0x7ff00000
LAB_MEMTRACER=${LAB_MEMTRACER:-1}
# 16: every page of memwrite's buffer still gets 32 sampled stores, and the
# checks read a quarter of what sample=4 wrote (8 M records, 214 MB).
LAB_MEMTRACE_SAMPLE=${LAB_MEMTRACE_SAMPLE:-16}
[ "${LAB_HOST_MODULE:-1}" = 1 ] || LAB_MEMTRACER=0
# The live view (README.md, "The live view").
LAB_LIVE=${LAB_LIVE:-1}
[ "${LAB_HOST_MODULE:-1}" = 1 ] || LAB_LIVE=0
cat >"$S/out/lab.conf" <<CONF
LAB_HOST_MODULE=${LAB_HOST_MODULE:-1}
LAB_STRESS=${LAB_STRESS:-1}
LAB_L1_SMP=$L1_SMP
LAB_MEMTRACER=$LAB_MEMTRACER
LAB_LIVE=$LAB_LIVE
LAB_MEMTRACE_SAMPLE=$LAB_MEMTRACE_SAMPLE
MEMSYNC_HPA=$MEMSYNC_HPA
CONF
log "L1: -accel $L1_ACCEL -cpu $L1_CPU -smp $L1_SMP, kernel: $L1_APPEND; $(tr '\n' ' ' <"$S/out/lab.conf")"

# A root lttng-sessiond here (L0 has no kernel tracer: user space only) and
# the session that records the plugin's events into out/memtrace.
MEMTRACE=$S/out/memtrace
SESSIOND_PID=
QEMU_PID=
memtrace_start() {
	if ! pgrep -x lttng-sessiond >/dev/null; then
		lttng-sessiond --daemonize --quiet --pidfile="$LAB_CACHE/l0-sessiond.pid" ||
			die "lttng-sessiond did not start"
		SESSIOND_PID=$(cat "$LAB_CACHE/l0-sessiond.pid")
	fi
	lttng destroy lab-memtrace >/dev/null 2>&1 || true
	lttng create lab-memtrace --output="$MEMTRACE" >/dev/null || die "lttng create lab-memtrace"
	# One busy process writes it all: per-process buffers, large enough
	# for a window's burst (docs/memory-tracing.md).
	lttng enable-channel -u -s lab-memtrace --buffers-pid --subbuf-size=8M --num-subbuf=16 mem >/dev/null ||
		die "lttng enable-channel mem"
	lttng enable-event -u -s lab-memtrace -c mem 'vmtrace_mem:*' >/dev/null || die "lttng enable-event vmtrace_mem"
	lttng start lab-memtrace >/dev/null || die "lttng start lab-memtrace"
	log "memory tracer session recording into $MEMTRACE"
}
memtrace_stop() {
	[ "$LAB_MEMTRACER" = 1 ] || return 0
	lttng stop lab-memtrace >/dev/null 2>&1 || true
	lttng destroy lab-memtrace >/dev/null 2>&1 || true
	[ -z "$SESSIOND_PID" ] || kill "$SESSIOND_PID" 2>/dev/null || true
	SESSIOND_PID=
	# The session records every process that loads the provider (another
	# QEMU with the plugin, say): keep L1's QEMU alone.
	local d
	[ -n "$QEMU_PID" ] || return 0
	for d in "$MEMTRACE"/ust/pid/*; do
		[ -d "$d" ] || continue
		case ${d##*/} in
		*-"$QEMU_PID"-*) ;;
		*) rm -rf "$d" ;;
		esac
	done
}

# The emulator's human monitor: registers of every L1 CPU when L1 stalls.
hmp() {
	timeout 60 python3 - "$MON" "$@" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(8)
s.connect(sys.argv[1])
def reply():
    buf = b""
    try:
        while not buf.endswith(b"(qemu) "):
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except socket.timeout:
        buf += b"\n[monitor did not answer: BQL held?]\n"
    return buf.decode(errors="replace")
reply()
for c in sys.argv[2:]:
    s.sendall(c.encode() + b"\n")
    print("(qemu) " + c)
    print(reply().replace("\r", ""))
PY
}

# Where every L1 CPU and every emulator thread is: the instruction
# pointers (L1 runs without KASLR: System.map names them; an L2 runs with
# it) and whether each vCPU thread spins or sleeps, twice, 10 s apart.
# Best effort: a wedged emulator may not answer its monitor, and the
# process may end meanwhile; neither may stop the stage before it says
# the emulator hung.
diagnose() (	# qemu-pid
	set +eE
	trap - ERR
	local i c
	for i in 1 2; do
		{
			echo "==== $(date +%T) sample $i"
			ps -L -o tid,comm,stat,pcpu,time,wchan:32 -p "$1"
			for c in $(seq 0 $((L1_SMP - 1))); do
				hmp "cpu $c" "info registers" "x/4i \$pc"
			done
		} >>"$DIAG" 2>&1
		sleep 10
	done
	# Name the instruction pointers found in L1's kernel.
	"$LAB_DIR/resolve-rips.py" "$S/out/l1/kallsyms.gz" "$DIAG" >>"$DIAG" 2>&1
)

# The memory tracer: the plugin in L1's QEMU, an lttng-ust session here.
PLUGIN_ARGS=()
if [ "$LAB_MEMTRACER" = 1 ]; then
	PLUGIN=${VMTRACE_BUILD_DIR:-$REPO_DIR/build}/libvmtrace-mem-qemu.so
	[ -f "$PLUGIN" ] || die "no memory tracer plugin at $PLUGIN (36-build-memtracer.sh builds it)"
	memtrace_start
	PLUGIN_ARGS=(-plugin "$PLUGIN,mode=window,guest-only=on,sample=$LAB_MEMTRACE_SAMPLE,sync=$MEMSYNC_HPA,stats=$S/out/memtrace-stats.json")
	L1_APPEND="$L1_APPEND memmap=8K\$$MEMSYNC_HPA"
fi
# The live view (tests/lab/README.md, "The live view"): L1 runs
# lttng-relayd; its live port is forwarded to 127.0.0.1:$LIVE_PORT here.
# When L1 says the host's and both guests' live sessions have started,
# `vmtrace top --json` attaches to them and runs until the guests'
# workloads are done; from the relay daemon's start on, L0's clock goes to
# the share every 100 ms, for L1 to bound the two clocks' offset
# (tools/clock-pair.c).
LIVE=$S/out/live
LIVE_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
VMTRACE=${VMTRACE_BUILD_DIR:-$REPO_DIR/build}/vmtrace
TOP_PID=
CLOCK_PID=
LIVE_STATE=
CLOCK_STATE=
LIVE_DONE_NS=
# Whether the view's last interval ends at or after $1 (ns, wall clock;
# L1's clock is within a second of L0's: check_live.py prints by how much).
live_caught_up() {
	tail -n 1 "$LIVE/top.jsonl" 2>/dev/null | python3 -c '
import json, sys
try:
    sys.exit(0 if json.loads(sys.stdin.read())["end_ns"] >= int(sys.argv[1]) else 1)
except (ValueError, KeyError):
    sys.exit(1)' "$1"
}
clock_start() {
	CLOCK_STATE=running
	(while :; do
		date +%s%N >"$LIVE/l0-clock.tmp" && mv "$LIVE/l0-clock.tmp" "$LIVE/l0-clock"
		sleep 0.1
	done) &
	CLOCK_PID=$!
}
live_start() {
	LIVE_STATE=running
	local url=net://127.0.0.1:$LIVE_PORT/host
	"$VMTRACE" top --json --wait -d 1 --stale-seconds 10 \
		"$url/l1/live" "$url/l2a/live" "$url/l2b/live" >"$LIVE/top.jsonl" 2>"$LIVE/top.err" &
	TOP_PID=$!
	log "live: vmtrace top attached to L1's relay daemon through 127.0.0.1:$LIVE_PORT"
}
live_stop() {
	local rc=0 i
	if [ -z "$TOP_PID" ]; then
		[ -z "$CLOCK_PID" ] || kill "$CLOCK_PID" 2>/dev/null || true
		return 0
	fi
	if kill -0 "$TOP_PID" 2>/dev/null; then
		# its CPU seconds (user + system) and age, for check_live.py's
		# figure of what the view costs at the lab's event rate
		awk -v hz="$(getconf CLK_TCK)" -v up="$(cut -d ' ' -f 1 /proc/uptime)" \
			'{ printf "%.2f %.2f\n", ($14 + $15) / hz, up - $22 / hz }' \
			"/proc/$TOP_PID/stat" >"$LIVE/top-cpu.txt" 2>/dev/null || true
		kill -INT "$TOP_PID" 2>/dev/null || true
		for i in $(seq 1 60); do
			kill -0 "$TOP_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$TOP_PID" 2>/dev/null || true
	fi
	wait "$TOP_PID" || rc=$?
	echo "$rc" >"$LIVE/top.rc"
	LIVE_STATE=done
	TOP_PID=
	[ -z "$CLOCK_PID" ] || kill "$CLOCK_PID" 2>/dev/null || true
	wait "$CLOCK_PID" 2>/dev/null || true
	CLOCK_PID=
}
NET_ARGS=()
if [ "$LAB_LIVE" = 1 ]; then
	[ -x "$VMTRACE" ] || die "no vmtrace at $VMTRACE (36-build-memtracer.sh builds it)"
	mkdir -p "$LIVE"
	NET_ARGS=(-netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$LIVE_PORT-:5344"
		-device virtio-net-pci,netdev=net0,romfile=)
fi
trap 'live_stop; memtrace_stop' EXIT

rc=0
timeout "${LAB_QEMU_TIMEOUT:-1500}" qemu-system-x86_64 \
	-name l1,debug-threads=on \
	-machine q35 -accel "$L1_ACCEL" -cpu "$L1_CPU" \
	-smp "$L1_SMP" -m "$L1_MEM_MB" \
	-kernel "$VMLINUZ" -initrd "$LAB_CACHE/initramfs-$KABI.cpio.gz" \
	-append "console=ttyS0 panic=-1 loglevel=4 edd=off nokaslr $L1_APPEND lab_script=l1.sh lab_name=l1" \
	-nographic -no-reboot -device virtio-rng-pci \
	-monitor "unix:$MON,server,nowait" \
	-d cpu_reset,guest_errors -D "$QLOG" \
	-virtfs "local,path=$S,mount_tag=host0,security_model=none,id=host0" \
	"${NET_ARGS[@]}" \
	"${PLUGIN_ARGS[@]}" \
	>"$CONSOLE" 2>&1 &
tpid=$!
QEMU_PID=
for _ in 1 2 3 4 5 6 7 8 9 10; do
	QEMU_PID=$(pgrep -P "$tpid" qemu-system || true)
	[ -z "$QEMU_PID" ] || break
	sleep 0.5
done
# A stalled L1 (an RCU stall, a soft lockup) can no longer pass the dmesg
# check: keep the diagnosis and stop it now rather than at the timeout.
stalled=
HEARTBEAT=$S/out/l1-heartbeat
while kill -0 "$tpid" 2>/dev/null; do
	sleep 2
	[ -n "$CLOCK_STATE" ] || [ ! -f "$LIVE/relayd-up" ] || clock_start
	[ -n "$LIVE_STATE" ] || [ ! -f "$LIVE/streaming" ] || live_start
	# The guests' workloads are done: once the view has printed the
	# second they ended in (or 90 s later), stop it; L1 then ends the
	# live sessions.
	if [ "$LIVE_STATE" = running ] && [ -f "$LIVE/workload-done" ]; then
		[ -n "$LIVE_DONE_NS" ] || LIVE_DONE_NS=$(date +%s%N)
		if live_caught_up "$LIVE_DONE_NS" || [ $(($(date +%s%N) - LIVE_DONE_NS)) -gt 90000000000 ]; then
			live_stop
		fi
	fi
	# L1 touches its heartbeat every 5 s from its first script line on
	# (guest-scripts/l1.sh): silence means a wedged emulator, found in a
	# minute or two instead of at the timeout.
	if [ -z "$stalled" ] && [ -f "$HEARTBEAT" ] &&
		[ $(($(date +%s) - $(stat -c %Y "$HEARTBEAT"))) -gt "${LAB_HEARTBEAT_S:-90}" ]; then
		stalled="no heartbeat from L1 for ${LAB_HEARTBEAT_S:-90} s"
		qpid=$(pgrep -P "$tpid" qemu-system || true)
		[ -z "$qpid" ] || diagnose "$qpid"
		kill "$tpid" 2>/dev/null || true
	fi
	if [ -z "$stalled" ] &&
		grep -qE 'rcu_.*detected stall|soft lockup|Kernel panic' "$CONSOLE"; then
		stalled=$(grep -m1 -E 'rcu_.*detected stall|soft lockup|Kernel panic' "$CONSOLE" || echo "a stall")
		qpid=$(pgrep -P "$tpid" qemu-system || true)
		if [ -n "$qpid" ] && ! grep -q 'Kernel panic' "$CONSOLE"; then
			diagnose "$qpid"
			sleep 20
			kill "$tpid" 2>/dev/null || true
		fi
	fi
done
wait "$tpid" || rc=$?
live_stop
memtrace_stop
# An emulator hang (QEMU 7.2's TCG, tests/lab/README.md) is reported
# apart from a failed check, with its own exit status, so that a caller
# may run the lab again instead of taking it for a bug of ours.
hang() {
	echo "lab: EMULATOR HANG: $*" >&2
	exit 75
}
if grep -q 'Kernel panic' "$CONSOLE"; then
	grep -B4 -A12 -m1 'Kernel panic' "$CONSOLE" >&2
	die "L1 kernel panic (console: $CONSOLE)"
fi
if [ -n "$stalled" ]; then
	# Not appended to the console: QEMU writes it at its own offset, over
	# anything added meanwhile.
	echo "lab: $stalled" >&2
	grep -A12 -m1 -E 'rcu_.*detected stall|soft lockup' "$CONSOLE" >&2 || true
	echo "--- L1 console and script log, last lines" >&2
	tail -n 15 "$CONSOLE" >&2
	tail -n 8 "$S/l1.sh.log" >&2 2>/dev/null || true
	grep -E '^RIP=|^==== |CPU#|^RIP' "$DIAG" >&2 || true
	hang "L1 stalled ($stalled; console: $CONSOLE, diagnosis: $DIAG)"
fi
[ $rc -eq 124 ] && hang "L1 timed out (console: $CONSOLE)"
if [ ! -f "$S/l1.sh.rc" ]; then
	# With -no-reboot, a triple fault of L1 ends QEMU without a kernel
	# message; -d cpu_reset logs it (an L2's is a SHUTDOWN exit instead).
	if grep -q 'Triple fault' "$QLOG" 2>/dev/null; then
		grep -E "$L1_TROUBLE" "$CONSOLE" && die "L1 triple fault after a kernel problem (console: $CONSOLE)"
		hang "L1 triple fault (no panic, no message; console: $CONSOLE)"
	fi
	die "L1 script did not finish (console: $CONSOLE)"
fi
if [ -f "$S/out/hang" ]; then
	cp "$S/l1.sh.log" "$S/out/l1.sh.log"
	# Not the emulator's if L1's kernel complained first.
	if grep -E "$L1_TROUBLE" "$S/out/l1/dmesg.txt" 2>/dev/null | grep -v 'soft lockup'; then
		die "$(cat "$S/out/hang"), and L1's dmesg has a kernel problem ($S/out/l1/dmesg.txt)"
	fi
	for g in l2a l2b l2m l2s; do
		[ -f "$S/out/$g/console.txt" ] || continue
		echo "--- $g console (last lines)"
		tail -n 15 "$S/out/$g/console.txt"
	done
	if [ -f "$S/out/l2s/hang-diag.txt" ]; then
		grep -E '^(==|--)|RIP=|HLT=' "$S/out/l2s/hang-diag.txt" || true
		"$LAB_DIR/resolve-rips.py" "$S/out/l1/kallsyms.gz" "$S/out/l2s/hang-diag.txt" \
			"$(cat "$S/out/l2s/text.txt" 2>/dev/null)" || true
	fi
	hang "$(cat "$S/out/hang") (logs: $S/out/l2s)"
fi
if [ "$(cat "$S/l1.sh.rc")" != 0 ]; then
	cat "$S/l1.sh.log"
	die "L1 script failed"
fi
cp "$S/l1.sh.log" "$S/out/l1.sh.log"
grep -E '^T\+|PARAM-REFUSED|REFUSED-WHILE' "$S/l1.sh.log" || true
guests="l2a l2b"
[ "$LAB_MEMTRACER" = 0 ] || guests="$guests l2m"
[ "${LAB_STRESS:-1}" = 0 ] || guests="$guests l2s"
for g in $guests; do
	if [ "$(cat "$S/out/$g/qemu.rc" 2>/dev/null)" = 124 ]; then
		tail -n 40 "$S/out/$g/console.txt" 2>/dev/null || true
		hang "$g hung and was killed by L1's watchdog"
	fi
	if [ "$(cat "$S/out/$g/l2.rc" 2>/dev/null)" != 0 ]; then
		cat "$S/out/$g/l2.log" "$S/out/$g/console.txt" 2>/dev/null | tail -n 40 || true
		# A guest that died before its script started never ran our
		# guest module: its kernel broke under the emulator (the
		# README's triple faults on an instruction fetch).
		[ -f "$S/out/$g/l2.log" ] ||
			hang "$g died before its script started (QEMU exit $(cat "$S/out/$g/qemu.rc" 2>/dev/null); the L1 trace shows why)"
		die "$g script failed"
	fi
	grep -E '^T\+|PARAM-REFUSED|REFUSED-WHILE' "$S/out/$g/l2.log" || true
done
