#!/usr/bin/env python3
"""Benchmark of the isolation pipeline against babeltrace2 alone.

For two lengths (N and 2N memory records), simulates a host, two guests and
a memory tracer (source.vmtrace.scenario memory=yes -> sink.ctf.fs), then
runs, alternately and REPEAT times each, on the same CTF input:
  baseline: src.ctf.fs x 4 -> filter.utils.muxer -> sink.utils.dummy
  sync:     src.ctf.fs x 4 -> filter.vmtrace.sync -> sink.utils.dummy
  isolate:  src.ctf.fs x 4 -> filter.vmtrace.sync -> filter.vmtrace.isolate -> sink.utils.dummy
  write:    the same with sink.ctf.fs (the cost of writing the per-VM traces)
and prints the best wall time of each, the ratio isolate/baseline (target
<= 1.5), the share of the isolation filter alone, and peak RSS (target:
flat with the trace's length).

    benchmarks/isolate_benchmark.py [--records 10000000] [--repeat 2] [--workdir DIR]
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "lib"))
sys.path.insert(0, str(TOP / "benchmarks"))
from bench_lib import babeltrace2, timed  # noqa: E402
from vmtrace_test import PLUGIN_DIR, params, simulate  # noqa: E402

# Memory records per simulated second with the default workload (host + 2
# guests x 2 vCPUs, 0.5 accesses per us on every CPU running code).
RECORDS_PER_SECOND = 1_300_000


def graph(traces, stages, sink):
    args = ["run"]
    for i, trace in enumerate(traces):
        args += ["-c", f"in{i}:src.ctf.fs", "-p", params(inputs=[trace])]
    names = []
    for name, cls, p in stages:
        args += ["-c", f"{name}:{cls}"] + (["-p", params(**p)] if p else [])
        names.append(name)
    args += ["-c", "out:" + sink[0]] + (["-p", params(**sink[1])] if sink[1] else [])
    for i in range(len(traces)):
        args += ["--connect", f"in{i}:{names[0]}"]
    for a, b in zip(names, names[1:] + ["out"]):
        args += ["--connect", f"{a}:{b}"]
    return args


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000_000, help="memory records of the shorter trace")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", help="where to write the traces (default: a temporary directory)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vmtrace-isolate-bench-"))
    print(f"workdir {workdir}; plugin {PLUGIN_DIR}")
    rows = []
    for factor in (1, 2):
        records = args.records * factor
        out = workdir / f"len{factor}"
        shutil.rmtree(out, ignore_errors=True)
        rec = simulate(out, seed=7, duration_ms=records * 1000 // RECORDS_PER_SECOND, memory=True,
                       ground_truth_intervals=False)
        traces = [rec.host] + rec.guests + [rec.memory]
        size = sum(f.stat().st_size for f in (out / "recorded").rglob("*") if f.is_file())
        sync = ("sync", "filter.vmtrace.sync", dict(quiet=True))
        isolate = ("iso", "filter.vmtrace.isolate", dict(quiet=True, report_dir=str(out / "report")))
        dummy = ("sink.utils.dummy", None)
        graphs = {
            "baseline": graph(traces, [("mux", "filter.utils.muxer", None)], dummy),
            "sync": graph(traces, [sync], dummy),
            "isolate": graph(traces, [sync, isolate], dummy),
            "write": graph(traces, [sync, isolate], ("sink.ctf.fs", dict(path=str(out / "isolated"), quiet=True))),
        }
        best = {name: (1e9, 0.0) for name in graphs}
        for _ in range(args.repeat):
            for name, g in graphs.items():
                shutil.rmtree(out / "isolated", ignore_errors=True)
                seconds, _, rss = timed(babeltrace2(g))
                best[name] = (min(best[name][0], seconds), max(best[name][1], rss))
        report = json.loads((out / "report" / "isolation.json").read_text(encoding="utf-8"))
        n = report["records_in"]
        rows.append((n, best))
        base = best["baseline"][0]
        print(f"{n / 1e6:.1f} M memory records ({size / 2**20:.0f} MiB of CTF with the kernel traces): "
              + "; ".join(f"{name} {t:.2f} s, {rss:.0f} MiB" for name, (t, rss) in best.items()), flush=True)
        print(f"  ratio isolate/baseline {best['isolate'][0] / base:.2f} (target <= 1.5), "
              f"sync alone {best['sync'][0] / base:.2f}, the isolation filter "
              f"{(best['isolate'][0] - best['sync'][0]) / base:.2f} of the baseline; writing the CTF output "
              f"{best['write'][0] - best['isolate'][0]:.2f} s more ({best['write'][0] / base:.2f} of the baseline); "
              f"isolation filter throughput {n / max(best['isolate'][0] - best['sync'][0], 1e-9) / 1e6:.2f} M "
              f"records/s", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    (small, b1), (large, b2) = rows
    print(f"isolate peak RSS: {b1['isolate'][1]:.0f} MiB at {small / 1e6:.1f} M records, {b2['isolate'][1]:.0f} MiB "
          f"at {large / 1e6:.1f} M records (x{b2['isolate'][1] / b1['isolate'][1]:.2f} for x{large / small:.2f})")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
