#!/usr/bin/env python3
"""The cost per vmtrace_mem_access() call of libvmtrace-mem, event disabled
and enabled, against an empty loop measured in the same process
(benchmarks/mem_tracer_benchmark.c); and, enabled, what the trace holds:
records kept of those emitted and bytes per record.

    benchmarks/mem_tracer_benchmark.py [--build build] [--calls 200000] [--rounds 5]
        [--buffers uid|pid] [--subbuf-size 4M]

Disabled: no session enables the event (a private lttng-sessiond runs, so the
provider is registered as it is in use).  Enabled: `vmtrace record memory`'s
session records it (its default channel, or --buffers / --subbuf-size).  Root runs the daemon and the
benchmark as nobody, the benchmark apart from a root lttng-sessiond, as the
tests do."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ust"))
sys.path.insert(0, str(ROOT / "tests" / "lib"))
sys.path.insert(0, str(ROOT / "tests" / "correlator"))
from test_mem_provider import AS_USER, TRACED, private_home, start_daemon, trace_dir  # noqa: E402


def run(binary, calls, rounds, env):
    proc = subprocess.run(TRACED + [str(binary), str(calls), str(rounds)], env=env, capture_output=True, text=True,
                          check=True, timeout=600)
    return json.loads(proc.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--buffers", choices=("uid", "pid"), default="uid", help="record memory --buffers")
    parser.add_argument("--subbuf-size", default="4M", help="record memory --subbuf-size")
    args = parser.parse_args()
    build = Path(args.build).resolve()
    binary = build / "benchmarks" / "mem_tracer_benchmark"
    with tempfile.TemporaryDirectory(prefix="vmtrace-mem-bench-") as tmp:
        daemon = start_daemon(tmp)
        try:
            off = run(binary, args.calls, args.rounds, daemon.env)
            out = private_home(tmp, "trace")
            subprocess.run(AS_USER + [str(build / "vmtrace"), "record", "memory", "-o", str(out), "--start",
                            "--buffers", args.buffers, "--subbuf-size", args.subbuf_size],
                           env=daemon.env, check=True, capture_output=True, text=True)
            on = run(binary, args.calls, args.rounds, daemon.env)
            daemon.lttng("stop", "vmtrace-memory")
            daemon.lttng("destroy", "vmtrace-memory")
        finally:
            daemon.stop()
        trace = trace_dir(out)
        counted = subprocess.run(["babeltrace2", str(trace)], capture_output=True, text=True, check=True)
        kept = sum(1 for line in counted.stdout.splitlines() if "vmtrace_mem_access" in line)
        data = sum(p.stat().st_size for p in trace.glob("vmtrace_*"))
    assert not off["enabled"] and on["enabled"], (off, on)
    emitted = on["calls"]
    print(f"empty loop: {off['empty_ns']:.2f} ns/iteration (disabled run), {on['empty_ns']:.2f} (enabled run)")
    for name, r in (("disabled", off), ("enabled", on)):
        cost = r["access_ns"] - r["empty_ns"]
        print(f"vmtrace_mem_access {name}: {r['access_ns']:.2f} ns/call, {cost:.2f} ns over the empty loop, "
              f"{r['access_ns'] / r['empty_ns']:.1f}x the empty loop; vmtrace_mem_access_enabled(): "
              f"{r['enabled_check_ns']:.2f} ns/call")
    print(f"enabled / disabled: {on['access_ns'] / off['access_ns']:.1f}x")
    print(f"enabled run: {kept} of {emitted} access records kept ({emitted - kept} discarded), "
          f"{data / max(kept, 1):.1f} bytes of stream data per record")


if __name__ == "__main__":
    main()
