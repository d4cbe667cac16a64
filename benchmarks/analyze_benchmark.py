#!/usr/bin/env python3
"""Benchmark of `vmtrace analyze` against babeltrace2 alone.

For two trace lengths (default 10 M and 20 M events), simulates a host and
two guests (source.vmtrace.scenario -> sink.ctf.fs), then runs, alternately
and REPEAT times each, on the same CTF input:
  baseline:     babeltrace2: src.ctf.fs x 3 -> filter.utils.muxer -> sink.utils.dummy
  analyze:           vmtrace analyze HOST GUEST GUEST -o DIR   (sync + every analysis, default outputs)
  analyze-intervals: the same with --intervals (also vcpu_states.csv, a row per state interval)
and prints the best wall time and CPU time (user + sys) of each, the ratios
to the baseline (target <= 2.0) and the peak RSS (target: flat with trace
length).  CPU time is less disturbed than wall time by other work on the
machine; both are printed.  With --instructions N it also counts, under
valgrind's callgrind, the instructions each run executes on an N-event
trace: a ratio that the machine's load does not disturb.

    benchmarks/analyze_benchmark.py [--events 10000000] [--repeat 2] [--workdir DIR]
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "lib"))
sys.path.insert(0, str(TOP / "benchmarks"))
from bench_lib import EVENTS_PER_SECOND, VMTRACE, baseline, timed  # noqa: E402
from vmtrace_test import PLUGIN_DIR, simulate  # noqa: E402


def instructions(out, events):
    rec = simulate(out, seed=7, duration_ms=events * 1000 // EVENTS_PER_SECOND, ground_truth_intervals=False)
    traces = [rec.host] + rec.guests
    runs = {
        "baseline": baseline(traces),
        "analyze": [str(VMTRACE), "analyze", "-q", *traces, "-o", str(out / "analysis")],
        "analyze-intervals": [str(VMTRACE), "analyze", "-q", "--intervals", *traces, "-o", str(out / "intervals")],
    }
    counts = {}
    for name, command in runs.items():
        log = out / f"{name}.callgrind"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={log}"] + command,
                       capture_output=True, check=True)
        counts[name] = int(re.search(r"^summary: (\d+)", log.read_text(encoding="utf-8"), re.M).group(1))
    base = counts["baseline"]
    print(f"instructions on {events / 1e6:.2f} M events: babeltrace2 {base / 1e9:.2f} G; "
          + "; ".join(f"vmtrace {name} {counts[name] / 1e9:.2f} G, ratio {counts[name] / base:.2f}"
                      for name in ("analyze", "analyze-intervals")), flush=True)
    shutil.rmtree(out, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="events of the shorter trace")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="also count instructions with callgrind on an N-event trace")
    parser.add_argument("--skip-timing", action="store_true", help="only the instruction counts")
    parser.add_argument("--workdir", help="where to write the traces (default: a temporary directory)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vmtrace-bench-"))
    print(f"workdir {workdir}; vmtrace {VMTRACE}; plugin {PLUGIN_DIR}", flush=True)
    if args.instructions:
        instructions(workdir / "instructions", args.instructions)
    if args.skip_timing:
        return 0
    rss = {}
    for factor in (1, 2):
        events = args.events * factor
        out = workdir / f"len{factor}"
        shutil.rmtree(out, ignore_errors=True)
        rec = simulate(out, seed=7, duration_ms=events * 1000 // EVENTS_PER_SECOND, ground_truth_intervals=False)
        traces = [rec.host] + rec.guests
        runs = {
            "baseline": baseline(traces),
            "analyze": [str(VMTRACE), "analyze", "-q", *traces, "-o", str(out / "analysis")],
            "analyze-intervals": [str(VMTRACE), "analyze", "-q", "--intervals", *traces, "-o", str(out / "intervals")],
        }
        best = {name: (1e9, 1e9, 0.0) for name in runs}
        for _ in range(args.repeat):
            for name, command in runs.items():
                wall, cpu, peak = timed(command)
                b = best[name]
                best[name] = (min(b[0], wall), min(b[1], cpu), max(b[2], peak))
        result = (out / "analysis" / "analysis.json").read_text(encoding="utf-8")
        total = sum(int(x) for x in re.findall(r'"(?:host|guests)": (\d+)', result))
        csv_mib = sum(f.stat().st_size for f in (out / "intervals").glob("*.csv")) / 2**20
        b = best["baseline"]
        print(f"{total / 1e6:.1f} M events: babeltrace2 {b[0]:.2f} s wall, {b[1]:.2f} s CPU, {b[2]:.0f} MiB", flush=True)
        for name in ("analyze", "analyze-intervals"):
            a = best[name]
            print(f"  vmtrace {name:<17} {a[0]:.2f} s wall, {a[1]:.2f} s CPU, {a[2]:.0f} MiB peak RSS; "
                  f"ratio wall {a[0] / b[0]:.2f}, CPU {a[1] / b[1]:.2f} (target <= 2.0)", flush=True)
        print(f"  ({csv_mib:.0f} MiB of CSV written with --intervals)", flush=True)
        rss[factor] = (total, best["analyze"][2], best["analyze-intervals"][2])
        shutil.rmtree(out, ignore_errors=True)
    (n1, r1, l1), (n2, r2, l2) = rss[1], rss[2]
    print(f"peak RSS of vmtrace analyze: {r1:.0f} -> {r2:.0f} MiB (x{r2 / r1:.2f}), --intervals {l1:.0f} -> "
          f"{l2:.0f} MiB (x{l2 / l1:.2f}) for x{n2 / n1:.2f} events")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
