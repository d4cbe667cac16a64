#!/usr/bin/env python3
"""Benchmark of `vmtrace sync`'s two paths against babeltrace2 alone.

For two trace lengths (N and 2N events), simulates a host and two guests
twice with the same seed: once with the vmsync and VM identity events in
streams of their own (`sync-channel`, as `vmtrace record` writes them),
once in one channel.  Then runs, in turn and REPEAT times each:

  baseline      babeltrace2: src.ctf.fs x 3 -> filter.utils.muxer -> sink.utils.dummy
  bt2-copy      babeltrace2: src.ctf.fs x 3 -> filter.utils.muxer -> sink.ctf.fs (decoding and
                writing every event with no vmtrace component: the per-event path's floor)
  fast+channel  vmtrace sync (fast path) on the traces with a vmsync channel
  fast          vmtrace sync (fast path) on the one-channel traces
  per-event     vmtrace sync --rewrite-events on the one-channel traces

and prints the best wall time and CPU time (user + system) of each and
their ratios to the baseline's.  Targets (issue 11): fast+channel <= 0.05x
and flat in the trace length, fast <= 1.0x, per-event <= 1.5x.

    benchmarks/fast_sync_benchmark.py [--events 10000000] [--repeat 2] [--workdir DIR]
"""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "lib"))
sys.path.insert(0, str(TOP / "benchmarks"))
from bench_lib import EVENTS_PER_SECOND, VMTRACE, baseline, timed  # noqa: E402
from vmtrace_test import PLUGIN_DIR, simulate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="events of the shorter trace")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", help="where to write the traces (default: a temporary directory)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vmtrace-fast-bench-"))
    print(f"workdir {workdir}; vmtrace {VMTRACE}; plugin {PLUGIN_DIR}", flush=True)
    results = {}
    for factor in (1, 2):
        events = args.events * factor
        duration_ms = events * 1000 // EVENTS_PER_SECOND
        base = workdir / f"len{factor}"
        shutil.rmtree(base, ignore_errors=True)
        plain = simulate(base / "plain", seed=7, duration_ms=duration_ms, ground_truth_intervals=False)
        channel = simulate(base / "channel", seed=7, duration_ms=duration_ms, ground_truth_intervals=False,
                           sync_channel=True)
        size = sum(f.stat().st_size for f in (base / "plain" / "recorded").rglob("*") if f.is_file())
        runs = {
            "baseline": lambda: baseline([plain.host] + plain.guests),
            "bt2-copy": lambda: baseline([plain.host] + plain.guests, base / "out"),
            "fast+channel": lambda: [str(VMTRACE), "sync", channel.host, *channel.guests, "-o", str(base / "out"),
                                     "-q"],
            "fast": lambda: [str(VMTRACE), "sync", plain.host, *plain.guests, "-o", str(base / "out"), "-q"],
            "per-event": lambda: [str(VMTRACE), "sync", plain.host, *plain.guests, "-o", str(base / "out"), "-q",
                                  "--rewrite-events"],
        }
        best = {name: (1e9, 1e9, 0.0) for name in runs}
        for _ in range(args.repeat):
            for name, argv in runs.items():
                shutil.rmtree(base / "out", ignore_errors=True)
                wall, cpu, rss = timed(argv())
                old = best[name]
                best[name] = (min(old[0], wall), min(old[1], cpu), max(old[2], rss))
        results[factor] = best
        ref_wall, ref_cpu, _ = best["baseline"]
        print(f"~{events / 1e6:.0f} M events ({size / 2**20:.0f} MiB of CTF):", flush=True)
        for name, (wall, cpu, rss) in best.items():
            print(f"  {name:13s} wall {wall:7.2f} s  CPU {cpu:7.2f} s  peak RSS {rss:5.0f} MiB  "
                  f"ratio to baseline: wall {wall / ref_wall:.3f}, CPU {cpu / ref_cpu:.3f}", flush=True)
        shutil.rmtree(base, ignore_errors=True)
    one, two = results[1], results[2]
    for name in ("fast+channel", "fast", "per-event"):
        print(f"{name}: x{two[name][1] / one[name][1]:.2f} CPU for x2 events (baseline "
              f"x{two['baseline'][1] / one['baseline'][1]:.2f})")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
