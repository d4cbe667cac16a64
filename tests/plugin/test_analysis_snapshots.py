#!/usr/bin/env python3
"""sink.vmtrace.analysis's snapshots (parameter snapshot-ms) and
filter.vmtrace.sync's live mode, on simulated recordings.

The snapshots cut the same analyses into intervals: their exits add up to
analysis.json's per vCPU, their state shares to its state times, and the
exits of each interval equal the kvm exit events an independent reader
(babeltrace2's text output) counts in the same seconds of the host trace.
The sync filter's live mode gives the analysis the offline path gives.
"""
import json
import subprocess
import sys
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import TempDirTestCase, babeltrace, params, simulate  # noqa: E402

CASES = [
    dict(seed=21, duration_ms=3000),
    dict(seed=22, duration_ms=3000, guests=3, vcpus=3, preempt_probability=0.2, migrate_probability=0.5,
         guest_drifts_ppm=[150.0, -80.0, 20.0], guest_offsets_s=[-2.5, 1.25, 7.0]),
]


def analyze(traces, out_dir, live=False, snapshot_ms=None, check=True):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = out_dir / "sync.json"
    sink = dict(output_dir=str(out_dir), sync_stats=str(stats))
    if snapshot_ms:
        sink.update(snapshot_ms=snapshot_ms, snapshot_path=str(out_dir / "snapshots.jsonl"))
    args = ["run"]
    for i, trace in enumerate(traces):
        args += ["-c", f"in{i}:src.ctf.fs", "-p", params(inputs=[trace])]
    args += ["-c", "sync:filter.vmtrace.sync", "-p", params(stats=str(stats), quiet=True, live=live),
             "-c", "out:sink.vmtrace.analysis", "-p", params(**sink)]
    for i in range(len(traces)):
        args += ["--connect", f"in{i}:sync"]
    args += ["--connect", "sync:out"]
    proc = babeltrace(args, check=check)
    if not check:
        return proc, None, None
    result = json.loads((out_dir / "analysis.json").read_text(encoding="utf-8"))
    snapshots = []
    if snapshot_ms:
        snapshots = [json.loads(line) for line in (out_dir / "snapshots.jsonl").read_text().splitlines()]
    return proc, result, snapshots


def exits_per_interval(host_trace, period_ns):
    """kvm exit events of the host trace by interval (ns from origin // period), read by babeltrace2's text sink."""
    proc = subprocess.run(["babeltrace2", "--clock-seconds", "--no-delta", host_trace], capture_output=True,
                          text=True, check=True, timeout=600)
    counts = Counter()
    for line in proc.stdout.splitlines():
        if " kvm_x86_exit:" not in line:
            continue
        seconds, fraction = line[1:line.index("]")].split(".")
        ns = int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0"))
        counts[ns // period_ns] += 1
    return counts


class AnalysisSnapshotsTest(TempDirTestCase):
    def check_case(self, case, period_ms):
        rec = simulate(self.tmp / f"sim{case['seed']}", **case)
        traces = [rec.host] + rec.guests
        _, result, snapshots = analyze(traces, self.tmp / f"out{case['seed']}", snapshot_ms=period_ms)
        period = period_ms * 1_000_000
        self.assertTrue(snapshots[-1]["final"])
        self.assertFalse(any(s["final"] for s in snapshots[:-1]))
        for a, b in zip(snapshots, snapshots[1:]):
            self.assertEqual(b["begin_ns"], a["end_ns"])
        for s in snapshots[:-1]:
            self.assertEqual(s["end_ns"] % period, 0)

        # The intervals add up to the whole.
        exits, state_ns = Counter(), Counter()
        for s in snapshots:
            for vm in s["vms"]:
                for v in vm["vcpus"]:
                    exits[(vm["name"], v["vcpu"])] += v["exits"]
                    for state, pct in v["state_pct"].items():
                        state_ns[(vm["name"], v["vcpu"], state)] += pct * s["covered_ns"] / 100
        for vm in result["vms"]:
            for v in vm["vcpus"]:
                key = (vm["name"], v["vcpu"])
                self.assertEqual(exits[key], v["exits"], key)
                for state, ns in v["states_ns"].items():
                    # shares are rounded to 0.01 %: of each interval's span
                    self.assertAlmostEqual(state_ns[key + (state,)], ns, delta=len(snapshots) * period * 1e-4,
                                           msg=(key, state))
        events = Counter()
        for s in snapshots:
            for t in s["traces"]:
                events[t["name"]] += t["events"]
        self.assertEqual(sum(events.values()), result["events"]["host"] + result["events"]["guests"])
        # Each interval's exits are the host trace's kvm exits of those seconds.
        oracle = exits_per_interval(rec.host, period)
        self.assertEqual(result["events"]["unattributed"], 0)
        for s in snapshots:
            if s["covered_ns"] == 0:
                continue
            seen = sum(v["exits"] for vm in s["vms"] for v in vm["vcpus"])
            self.assertEqual(seen, oracle[s["begin_ns"] // period], s["begin_ns"])

        # filter.vmtrace.sync's live mode: the same analysis.
        _, live, _ = analyze(traces, self.tmp / f"live{case['seed']}", live=True)
        stats = json.loads((self.tmp / f"live{case['seed']}" / "sync.json").read_text())
        for m in stats["machines"]:
            if m["role"] == "guest":
                self.assertEqual(m["consistency"]["violations"], 0, m["name"])
                self.assertEqual(m["displaced_events"], 0, m["name"])
        self.assertEqual(live["events"], result["events"])
        for a, b in zip(result["vms"], live["vms"]):
            self.assertEqual(a["name"], b["name"])
            self.assertEqual(b["sync"]["quality"], "accurate")
            for va, vb in zip(a["vcpus"], b["vcpus"]):
                self.assertEqual(va["exits"], vb["exits"])
                self.assertEqual(va["states_ns"], vb["states_ns"])

    def test_two_vms_one_second_intervals(self):
        self.check_case(CASES[0], 1000)

    def test_three_vms_drifting_clocks_quarter_second_intervals(self):
        self.check_case(CASES[1], 250)

    def test_snapshot_parameters_are_checked(self):
        rec = simulate(self.tmp / "sim", seed=3, duration_ms=500)
        base = ["run", "-c", "in:src.ctf.fs", "-p", params(inputs=[rec.host]), "-c", "out:sink.vmtrace.analysis"]
        for sink, message in ((dict(output_dir=str(self.tmp), snapshot_ms=1000), "go together"),
                              (dict(snapshot_ms=0, snapshot_path=str(self.tmp / "s.jsonl")), "`snapshot-ms`"),
                              (dict(snapshot_ms=100, snapshot_path=str(self.tmp / "no" / "dir" / "s.jsonl")),
                               str(self.tmp / "no" / "dir" / "s.jsonl"))):
            proc = babeltrace(base + ["-p", params(**sink), "--connect", "in:out"], check=False)
            self.assertNotEqual(proc.returncode, 0, sink)
            self.assertIn(message, " ".join(proc.stderr.split()), sink)


if __name__ == "__main__":
    unittest.main()
