#!/usr/bin/env python3
"""Measures how far synchronised guest timestamps are from the ground truth.

For each guest of a simulated recording, reads the guest trace as recorded
(guest clock) and as synchronised (host clock) with babeltrace2, pairs the
events stream by stream (cpu_id), and compares every synchronised time with
the true host time that the simulator's ground truth gives:

    host = host_origin_ns + (guest - guest_origin_ns) * 1e9 / (1e9 + drift_ppb)

Prints one line per guest and, with --json, the figures as JSON.
"""
import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict

LINE = re.compile(r"^\[(\d+)\.(\d{9})\] \S+ (\S+): \{ cpu_id = (\d+) \}")


def read_events(trace_dir, reader="babeltrace2"):
    """Returns {cpu: [(ns_from_origin, event_name), ...]} in stream order.

    `reader`: babeltrace2, or babeltrace (1.x, an independent CTF reader
    with the same text output)."""
    proc = subprocess.run(
        [reader, "--clock-seconds", "--no-delta", trace_dir],
        check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{reader} cannot read {trace_dir}:\n{proc.stderr}")
    per_cpu = defaultdict(list)
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m is None:
            raise RuntimeError(f"unexpected babeltrace2 line in {trace_dir}: {line[:120]}")
        ns = int(m.group(1)) * 1_000_000_000 + int(m.group(2))
        per_cpu[int(m.group(4))].append((ns, m.group(3)))
    return per_cpu


def true_host_time(transform, guest_ns):
    # Exact integers: a float cannot hold epoch nanoseconds (its step there is 256 ns).
    num = (guest_ns - transform["guest_origin_ns"]) * 1_000_000_000
    den = 1_000_000_000 + transform["drift_ppb"]
    return transform["host_origin_ns"] + (2 * num + den) // (2 * den)


def guest_errors(transform, recorded_dir, synced_dir, reader="babeltrace2"):
    """Returns (count, max_abs_error_ns, mean_abs_error_ns); `reader` reads
    the synchronised trace."""
    recorded = read_events(recorded_dir)
    synced = read_events(synced_dir, reader)
    if sorted(recorded) != sorted(synced):
        raise RuntimeError(f"streams differ: {sorted(recorded)} vs {sorted(synced)}")
    count = 0
    worst = 0.0
    total = 0.0
    for cpu, events in recorded.items():
        out = synced[cpu]
        if len(events) != len(out):
            raise RuntimeError(f"cpu {cpu}: {len(events)} events recorded but {len(out)} synchronised")
        for (g, name), (h, out_name) in zip(events, out):
            if name != out_name:
                raise RuntimeError(f"cpu {cpu}: event {name} became {out_name}")
            error = float(abs(h - true_host_time(transform, g)))
            worst = max(worst, error)
            total += error
            count += 1
    return count, worst, total / max(count, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ground_truth", help="JSON written by source.vmtrace.scenario's ground-truth parameter")
    parser.add_argument("pairs", nargs="+", metavar="RECORDED=SYNCED",
                        help="recorded and synchronised trace directories of guest 0, 1, ... in order")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    with open(args.ground_truth, encoding="utf-8") as f:
        truth = json.load(f)
    results = []
    for index, pair in enumerate(args.pairs):
        recorded, _, synced = pair.partition("=")
        guest = truth["guests"][index]
        count, worst, mean = guest_errors(guest["transform"], recorded, synced)
        results.append({"guest": guest["hostname"], "events": count, "max_error_ns": worst, "mean_error_ns": mean})
        print(f"{guest['hostname']}: {count} events, error against ground truth: max {worst:.1f} ns, "
              f"mean {mean:.1f} ns")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
