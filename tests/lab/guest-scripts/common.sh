# Sourced by the scripts that run inside the lab's machines.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root LTTNG_HOME=/root
t() { echo "T+$(cut -d' ' -f1 /proc/uptime)s $LAB_NAME: $*"; }
fail() { echo "$LAB_NAME FAIL: $*"; dmesg | tail -n 30; exit 1; }

# A rejected module parameter must fail the load and say why in dmesg.
expect_param_refused() {	# module param=value expected-dmesg-text
	if modprobe "$1" "$2" 2>/dev/null; then
		fail "modprobe $1 $2 was accepted"
	fi
	dmesg | grep -q "$3" || fail "modprobe $1 $2: no '$3' in dmesg"
	grep -q "^${1//-/_} " /proc/modules && fail "$1 stayed loaded after $2"
	echo "PARAM-REFUSED $1 $2"
}

start_sessiond() {	# extra probe module name (without lttng-probe-)
	lttng-sessiond -d --extra-kmod-probes="$1" || fail "lttng-sessiond did not start"
	i=0
	until grep -q "^lttng_probe_${1//-/_} " /proc/modules; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "lttng-sessiond did not load lttng-probe-$1"
		sleep 0.1
	done
}

# dmesg must hold no oops, BUG or WARNING.
check_dmesg() {
	dmesg >"$1"
	if grep -E 'Oops|BUG:|WARNING:|Call Trace|general protection|soft lockup|blocked for more than|rcu_.*stall' "$1"; then
		fail "kernel problem in dmesg"
	fi
}

# Asks L1 for a memory-tracer window (l1.sh's memory_window, one window at
# a time) and waits until it is open.
memory_window_open() {
	touch /mnt/out/win-req
	i=0
	until [ -f /mnt/win-open ]; do
		i=$((i + 1))
		[ $i -lt 3000 ] || fail "L1 never opened the memory window"
		sleep 0.1
	done
}
