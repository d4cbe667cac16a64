#!/usr/bin/env python3
"""Cost of the QEMU plugin (ust/qemu-plugin) per guest memory access, in QEMU's CPU time.

Boots the plugin's bare-metal test guest (ust/qemu-plugin/testguest) with two
window lengths (10 and 10 + R passes over a 1 MiB buffer: a 4-byte store
every 64 bytes and a load per page, 16640 accesses a pass) and takes the
difference of QEMU's CPU times (user + system, all threads: the machine is
shared), which cancels QEMU's start, the firmware and the guest's set-up:
the time of R x 16640 accesses (R per configuration, so that each difference
lasts a fraction of a second or more).  Each configuration runs --repeat
times; the best difference is kept.  Prints the time per access and its
ratio to QEMU without the plugin.  Asserts nothing.  The lttng consumer
daemon's share of recording is not in these figures.

  plugin absent              QEMU alone
  window closed              plugin loaded, sync=BASE, the guest's window controls sent elsewhere
  window open, no session    the window's accesses reach vmtrace_mem_access_enabled() only
  window open, sample=100    under an lttng-ust session: 1 access in 100 recorded
  window open, recording     under an lttng-ust session: every access recorded

Then the clock marks' brackets: the guest makes --marks marks, each after a
pause of empty loops, between two TSC reads (under TCG the guest's TSC is the
host's), with the plugin recording vmtrace_mem_sync, with the plugin and no
session, and without the plugin.  The TSC's rate comes from a fit of the
recorded marks' times (lttng-ust's clock) to their TSC readings.  Prints the
brackets' median, 90th percentile and maximum in ns: the width that
emitting the sync event inside the store's callback adds to the host's
bracket around the store.

usage: qemu_plugin_benchmark.py [--build DIR] [--repeat N] [--marks N]
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ust"))
import test_qemu_plugin as t  # noqa: E402  (its session daemon and paths)

PAGES, STRIDE = 256, 64
PER_ROUND = PAGES * (4096 // STRIDE) + PAGES  # stores, then one load per page
ROUNDS_SHORT = 10


def run(build, plugin_args, window, rounds, env=None):
    cmd = t.HIDE_ROOT_SESSIOND + t.AS_NOBODY + [t.QEMU, "-display", "none", "-no-reboot", "-m", "128", "-kernel", str(build["guest"]),
                         "-append", f"base={t.BASE:#x} pages={PAGES} stride={STRIDE} rounds={rounds} window={window}"]
    if plugin_args is not None:
        cmd += ["-plugin", ",".join([str(build["plugin"]), *plugin_args])]
    # CPU time of QEMU (all its threads), not wall time: the machine is shared and noisy.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if r.returncode != 0:
        raise SystemExit(f"qemu failed ({r.returncode}): {r.stderr}")
    return elapsed


def slope(build, plugin_args, window, extra_rounds, repeat, env=None, session=None):
    """Best seconds per access over `repeat` pairs of runs."""
    best = None
    for i in range(repeat):
        times = []
        for rounds in (ROUNDS_SHORT, ROUNDS_SHORT + extra_rounds):
            if session:
                session.must("create", f"bench{i}-{rounds}", f"--output={session.out}/{i}-{rounds}")
                session.must("enable-event", "-u", "vmtrace_mem:*")
                session.must("start")
            try:
                times.append(run(build, plugin_args, window, rounds, env))
            finally:
                if session:
                    session.must("stop")
                    session.lttng("destroy", f"bench{i}-{rounds}")
                    shutil.rmtree(f"{session.out}/{i}-{rounds}", ignore_errors=True)
        s = (times[1] - times[0]) / (extra_rounds * PER_ROUND)
        best = s if best is None else min(best, s)
    return best


def timed_marks(build, plugin_args, marks, debugcon, env):
    """The guest's TSC readings around each mark, from its debug port: [(t0, t1)]."""
    cmd = t.HIDE_ROOT_SESSIOND + t.AS_NOBODY + [
        t.QEMU, "-display", "none", "-no-reboot", "-m", "128", "-kernel", str(build["guest"]),
        "-append", f"base={t.BASE:#x} marks={marks} after=0 spin=1000000 pages=1", "-debugcon", f"file:{debugcon}"]
    if plugin_args is not None:
        cmd += ["-plugin", ",".join([str(build["plugin"]), *plugin_args])]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        raise SystemExit(f"qemu failed ({r.returncode}): {r.stderr}")
    words = [int(line.split()[1], 16) for line in Path(debugcon).read_text().splitlines()]
    return [(words[i + 1] << 32 | words[i + 2], words[i + 3] << 32 | words[i + 4]) for i in range(0, len(words), 5)]


def mark_brackets(build, marks, tmp, daemon, nodaemon):
    """ns per TSC tick and, per configuration, the TSC ticks between the reads around each mark."""
    sync = f"sync={t.BASE:#x}"
    out = tmp / "brackets"
    daemon.must("create", "brackets", f"--output={out}")
    try:
        daemon.must("enable-event", "-u", "vmtrace_mem:vmtrace_mem_sync")
        daemon.must("start")
        recorded = timed_marks(build, [sync], marks, tmp / "debugcon-session", daemon.env)
        daemon.must("stop")
    finally:
        daemon.lttng("destroy", "brackets")
    text = subprocess.run(["babeltrace2", "--clock-cycles", str(out)], capture_output=True, text=True,
                          check=True).stdout
    times = [int(line[1:line.index("]")]) for line in text.splitlines() if "vmtrace_mem_sync" in line]
    if len(times) != len(recorded):
        raise SystemExit(f"{len(times)} marks in the trace, {len(recorded)} made")
    # Least squares of the event times on the brackets' midpoints, the first mark (translation) left out.
    xs = [(a + b) / 2 for a, b in recorded[1:]]
    ys = times[1:]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    ns_per_tick = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    rows = [("plugin, session on", [b - a for a, b in recorded]),
            ("plugin, no session", [b - a for a, b in timed_marks(build, [sync], marks, tmp / "dc-nosession",
                                                                   nodaemon)]),
            ("plugin absent", [b - a for a, b in timed_marks(build, None, marks, tmp / "dc-absent", nodaemon)])]
    return ns_per_tick, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(Path(__file__).resolve().parents[1] / "build"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--marks", type=int, default=200)
    a = ap.parse_args()
    build = {"plugin": Path(a.build) / "libvmtrace-mem-qemu.so",
             "guest": Path(a.build) / "ust" / "qemu-plugin" / "testguest.elf"}
    if not t.QEMU or not build["plugin"].exists() or not build["guest"].exists():
        raise SystemExit(f"needs qemu-system-x86_64 and {build['plugin']} and {build['guest']} (build first)")

    tmp = t.shared_tmpdir("vmtrace-qemu-bench-")
    home = tmp / "lttng-home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    nodaemon = dict(os.environ, LTTNG_HOME=str(tempfile.mkdtemp(dir=tmp)))
    daemon = None
    try:
        sync = f"sync={t.BASE:#x}"
        rows = [("plugin absent", 8000, slope(build, None, 1, 8000, a.repeat, nodaemon)),
                ("window closed", 4000, slope(build, [sync], 0, 4000, a.repeat, nodaemon)),
                ("window open, no session", 4000, slope(build, [sync], 1, 4000, a.repeat, nodaemon))]
        daemon = t.SessionDaemon(home)
        daemon.out = tmp / "traces"
        rows.append(("window open, sample=100", 4000,
                     slope(build, [sync, "sample=100"], 1, 4000, a.repeat, daemon.env, daemon)))
        rows.append(("window open, recording", 200, slope(build, [sync], 1, 200, a.repeat, daemon.env, daemon)))
        brackets = mark_brackets(build, a.marks, tmp, daemon, nodaemon)
    finally:
        if daemon:
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    base = rows[0][2]
    print(f"QEMU CPU time per guest access (4-byte stores and loads), best of {a.repeat}")
    print(f"{'configuration':<26} {'accesses':>10} {'ns/access':>10} {'ratio':>7}")
    for name, rounds, s in rows:
        print(f"{name:<26} {rounds * PER_ROUND:>10} {s * 1e9:>10.1f} {s / base:>7.1f}")

    ns_per_tick, rows = brackets
    print(f"\nclock-mark brackets (guest TSC at {1e3 / ns_per_tick:.1f} MHz), {a.marks} marks, first left out")
    print(f"{'configuration':<26} {'median ns':>10} {'p90 ns':>10} {'max ns':>10}")
    for name, widths in rows:
        w = sorted(x * ns_per_tick for x in widths[1:])
        print(f"{name:<26} {statistics.median(w):>10.0f} {w[int(0.9 * len(w))]:>10.0f} {w[-1]:>10.0f}")


if __name__ == "__main__":
    main()
