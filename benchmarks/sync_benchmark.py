#!/usr/bin/env python3
"""Benchmark of filter.vmtrace.sync against babeltrace2 alone.

For two trace lengths, simulates a host and two guests (source.vmtrace.scenario
-> sink.ctf.fs), then runs, alternately and REPEAT times each, on the same CTF
input:
  baseline: src.ctf.fs x 3 -> filter.utils.muxer -> sink.utils.dummy
  sync:     src.ctf.fs x 3 -> filter.vmtrace.sync -> sink.utils.dummy
and prints the best wall time of each, their ratio (target <= 1.5) and the
peak RSS of each (target: the sync's does not grow with trace length).

With --instructions N it also counts, under valgrind's callgrind, the
instructions both pipelines execute on an N-event trace: a figure that the
machine's load does not disturb.

It also measures the simulator alone (source.vmtrace.scenario -> dummy) at
two lengths, up to 50 M events, to show that its memory stays constant.

    benchmarks/sync_benchmark.py [--events 10000000] [--repeat 2] [--workdir DIR]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "lib"))
sys.path.insert(0, str(TOP / "benchmarks"))
from bench_lib import EVENTS_PER_SECOND, babeltrace2, baseline_graph, timed  # noqa: E402
from vmtrace_test import PLUGIN_DIR, params, simulate, sync_graph  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="events of the shorter trace")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--simulator-events", type=int, default=50_000_000)
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="also count instructions with callgrind on an N-event trace")
    parser.add_argument("--workdir", help="where to write the traces (default: a temporary directory)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vmtrace-bench-"))
    print(f"workdir {workdir}; plugin {PLUGIN_DIR}")
    rows = []
    for factor in (1, 2):
        events = args.events * factor
        duration_ms = events * 1000 // EVENTS_PER_SECOND
        out = workdir / f"len{factor}"
        shutil.rmtree(out, ignore_errors=True)
        rec = simulate(out, seed=7, duration_ms=duration_ms, ground_truth_intervals=False)
        traces = [rec.host] + rec.guests
        size = sum(f.stat().st_size for f in (out / "recorded").rglob("*") if f.is_file())
        best = {"baseline": (1e9, 0.0), "sync": (1e9, 0.0)}
        sync_args = sync_graph(traces, sink="dummy", quiet=True, stats=str(out / "stats.json"))
        for _ in range(args.repeat):
            for name, graph in (("baseline", baseline_graph(traces)), ("sync", sync_args)):
                seconds, _, rss = timed(babeltrace2(graph))
                best[name] = (min(best[name][0], seconds), max(best[name][1], rss))
        stats = (out / "stats.json").read_text(encoding="utf-8")
        total = sum(int(x) for x in re.findall(r'"events_out": (\d+)', stats))
        rows.append((total, size, best))
        print(f"{total / 1e6:.1f} M events ({size / 2**20:.0f} MiB of CTF): "
              f"babeltrace2 {best['baseline'][0]:.2f} s, {best['baseline'][1]:.0f} MiB; "
              f"with filter.vmtrace.sync {best['sync'][0]:.2f} s, {best['sync'][1]:.0f} MiB; "
              f"ratio {best['sync'][0] / best['baseline'][0]:.2f} (target <= 1.5)", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    (small, _, b1), (large, _, b2) = rows
    print(f"sync peak RSS: {b1['sync'][1]:.0f} MiB at {small / 1e6:.1f} M events, {b2['sync'][1]:.0f} MiB at "
          f"{large / 1e6:.1f} M events (x{b2['sync'][1] / b1['sync'][1]:.2f} for x{large / small:.2f} events)")

    if args.instructions:
        out = workdir / "instructions"
        rec = simulate(out, seed=7, duration_ms=args.instructions * 1000 // EVENTS_PER_SECOND,
                       ground_truth_intervals=False)
        traces = [rec.host] + rec.guests
        counts = {}
        for name, graph in (("baseline", baseline_graph(traces)), ("sync", sync_graph(traces, sink="dummy", quiet=True))):
            log = out / f"{name}.callgrind"
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={log}"] + babeltrace2(graph),
                           capture_output=True, check=True)
            summary = re.search(r"^summary: (\d+)", log.read_text(encoding="utf-8"), re.M)
            counts[name] = int(summary.group(1))
        print(f"instructions on {args.instructions / 1e6:.1f} M events: babeltrace2 {counts['baseline'] / 1e9:.2f} G, "
              f"with filter.vmtrace.sync {counts['sync'] / 1e9:.2f} G, ratio {counts['sync'] / counts['baseline']:.2f}",
              flush=True)
        shutil.rmtree(out, ignore_errors=True)

    sim = []
    for events in (args.simulator_events // 10, args.simulator_events):
        duration_ms = events * 1000 // EVENTS_PER_SECOND
        seconds, _, rss = timed(babeltrace2(["run", "-c", "sim:source.vmtrace.scenario",
                                             "-p", params(seed=7, duration_ms=duration_ms),
                                             "-c", "mux:filter.utils.muxer", "-c", "out:sink.utils.dummy",
                                             "--connect", "sim:mux", "--connect", "mux:out"]))
        sim.append((events, seconds, rss))
        print(f"simulator: ~{events / 1e6:.0f} M events in {seconds:.1f} s ({events / seconds / 1e6:.2f} M events/s), "
              f"peak RSS {rss:.0f} MiB", flush=True)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
