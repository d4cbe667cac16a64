#!/usr/bin/env python3
"""sink.vmtrace.analysis against the simulator's ground truth.

Simulated host + guests go through src.ctf.fs -> filter.vmtrace.sync ->
sink.vmtrace.analysis, as `vmtrace analyze` runs them.  vCPU states come
from host events only, so their durations and interval counts must equal
the truth exactly; exits, migrations and logged non-deterministic events
are counted exactly; the guest-mode time of each guest thread depends on
synchronised guest events and must be within the sync bound per switch.
"""
import csv
import json
import re
import subprocess
import sys
import unittest
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import (PLUGIN_DIR, TempDirTestCase, babeltrace, params,  # noqa: E402
                          simulate)

STATES = ["guest", "hypervisor", "preempted", "idle"]
CASES = [
    dict(seed=11, duration_ms=4000),
    dict(seed=12, duration_ms=4000, guests=3, vcpus=3, preempt_probability=0.2, migrate_probability=0.5),
    dict(seed=13, duration_ms=4000, guest_drifts_ppm=[200.0, -200.0], guest_offsets_s=[-4.5, 3.25],
         latency_mean_ns=20_000),
]


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def analyze(traces, out_dir, check=True, **sink_params):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = out_dir / "sync.json"
    args = ["run"]
    for i, trace in enumerate(traces):
        args += ["-c", f"in{i}:src.ctf.fs", "-p", params(inputs=[trace])]
    args += ["-c", "sync:filter.vmtrace.sync", "-p", params(stats=str(stats), quiet=True),
             "-c", "out:sink.vmtrace.analysis",
             "-p", params(output_dir=str(out_dir), sync_stats=str(stats), intervals=True, **sink_params)]
    for i in range(len(traces)):
        args += ["--connect", f"in{i}:sync"]
    args += ["--connect", "sync:out"]
    proc = babeltrace(args, check=check)
    result = None
    if (out_dir / "analysis.json").exists():
        result = json.loads((out_dir / "analysis.json").read_text(encoding="utf-8"))
    return proc, result


class AnalysisAccuracyTest(TempDirTestCase):
    def check_case(self, case):
        out = self.tmp / f"seed{case['seed']}"
        rec = simulate(out / "sim", **case)
        _, result = analyze([rec.host] + rec.guests, out / "analysis")
        truth = rec.truth()
        self.assertEqual(result["format"], "vmtrace-analysis")
        self.assertEqual(result["events"]["unattributed"], 0)
        self.assertEqual(result["events"]["reordered"], 0)
        self.assertEqual(result["warnings"], [])
        self.assertEqual(result["end_ns"] - result["begin_ns"], truth["duration_ns"])
        by_name = {vm["name"]: vm for vm in result["vms"]}
        self.assertEqual(len(truth["guests"]), case.get("guests", 2))  # the loops below check each one
        self.assertEqual(sorted(by_name), sorted(g["hostname"] for g in truth["guests"]))

        for g, guest in enumerate(truth["guests"]):
            vm = by_name[guest["hostname"]]
            self.assertEqual(vm["vm_uid"], guest["vm_uid_hex"])
            self.assertEqual(vm["guest_trace"], guest["hostname"])
            self.assertEqual(vm["sync"]["quality"], "accurate")
            bound = vm["sync"]["bound_ns"]
            vcpus = {v["vcpu"]: v for v in vm["vcpus"]}
            self.assertEqual(sorted(vcpus), list(range(len(guest["vcpu_tids"]))))
            totals = [t for t in truth["totals"] if t["guest"] == g]
            self.assertEqual(sorted(t["vcpu"] for t in totals), sorted(vcpus))  # one per vCPU, none skipped
            for total in totals:
                v = vcpus[total["vcpu"]]
                self.assertEqual(v["tid"], guest["vcpu_tids"][total["vcpu"]])
                for state in STATES:
                    self.assertEqual(v["states_ns"][state], total[f"{state}_ns"], f"{guest['hostname']} {state}")
                    self.assertEqual(v["intervals"][state], total[f"{state}_intervals"])
                self.assertEqual(v["states_ns"]["unknown"], 0)
                got_exits = {e["code"]: e["count"] for e in vm["exits"] if e["vcpu"] == total["vcpu"]}
                self.assertEqual(got_exits, {int(k, 16): n for k, n in total["exits"].items()})
                self.assertEqual(v["exits"], sum(got_exits.values()))
                self.assertEqual(v["pcpu_migrations"], total["pcpu_migrations"])
                self.assertEqual(sum(v["pcpu_residency_ns"].values()),
                                 total["guest_ns"] + total["hypervisor_ns"], "on a CPU = guest + hypervisor")
            counts = truth["guest_counts"][g]
            self.assertEqual({k: vm["nondet"][k] for k in counts["nondet"]}, counts["nondet"])
            self.assertEqual(vm["guest_migrations"]["matrix"], counts["guest_migrations"])
            # co-scheduling covers the run from the VM's identification on
            cosched = vm["coscheduling"]["running_ns"]
            in_guest = sum(k * ns for k, ns in enumerate(cosched))
            self.assertLessEqual(in_guest, sum(v["states_ns"]["guest"] for v in vm["vcpus"]))
            self.assertGreater(in_guest, 0.99 * sum(v["states_ns"]["guest"] for v in vm["vcpus"]))

            # guest threads: each switch is placed within the sync bound
            truth_threads = {(t["tid"], t["vcpu"]): t["guest_ns"] for t in counts["guest_thread_ns"]}
            got_threads = {}
            for t in vm["guest_threads"]:
                for vcpu, ns in t["guest_ns_by_vcpu"].items():
                    got_threads[(t["tid"], int(vcpu))] = ns
            self.assertEqual(set(got_threads), set(truth_threads))
            switches = Counter()
            for row in read_csv(out / "analysis" / "vcpu_states.csv"):
                if row["state"] == "guest" and int(row["vm_id"]) == vm["id"]:
                    switches[(int(row["guest_tid"] or -1), int(row["vcpu"]))] += 1
            for key, ns in truth_threads.items():
                self.assertLessEqual(abs(got_threads[key] - ns), 2 * bound * switches[key] + 10_000,
                                     f"guest thread {key}")

        # the timeline conserves each vCPU's time
        for vm in result["vms"]:
            bin_ns = vm["timeline"]["bin_ns"]
            self.assertTrue(vm["vcpus"])
            self.assertEqual(len(vm["timeline"]["vcpus"]), len(vm["vcpus"]))  # zip() below would drop the rest
            for row, v in zip(vm["timeline"]["vcpus"], vm["vcpus"]):
                self.assertEqual(row["tid"], v["tid"])
                for state in STATES:
                    self.assertAlmostEqual(sum(row[state]) * bin_ns / 1e9, v["states_ns"][state] / 1e9,
                                           delta=1e-4 * vm["timeline"]["bins"] * bin_ns / 1e9 + 1e-6)

    def test_counts_and_durations_match_the_ground_truth(self):
        for case in CASES:
            with self.subTest(**case):
                self.check_case(case)

    def test_csv_rows_add_up_to_the_totals(self):
        rec = simulate(self.tmp / "sim", seed=21, duration_ms=2000)
        _, result = analyze([rec.host] + rec.guests, self.tmp / "a")
        per_vcpu = defaultdict(Counter)
        for row in read_csv(self.tmp / "a" / "vcpu_states.csv"):
            self.assertEqual(int(row["end_ns"]) - int(row["start_ns"]), int(row["duration_ns"]))
            per_vcpu[(int(row["vm_id"]), int(row["vcpu"]))][row["state"]] += int(row["duration_ns"])
        nondet = Counter()
        last = 0
        for row in read_csv(self.tmp / "a" / "nondet.csv"):
            nondet[(int(row["vm_id"]), row["kind"])] += 1
            self.assertGreaterEqual(int(row["time_ns"]), last, "the log is in time order")
            last = int(row["time_ns"])
        self.assertEqual([len(vm["vcpus"]) for vm in result["vms"]], [2, 2])  # the loops below check each
        for vm in result["vms"]:
            for v in vm["vcpus"]:
                for state in STATES:
                    self.assertEqual(per_vcpu[(vm["id"], v["vcpu"])][state], v["states_ns"][state])
            for kind, count in vm["nondet"].items():
                self.assertEqual(nondet[(vm["id"], kind)], count)
        vms_csv = read_csv(self.tmp / "a" / "vms.csv")
        self.assertEqual([(int(r["vm_id"]), r["name"]) for r in vms_csv],
                         [(vm["id"], vm["name"]) for vm in result["vms"]])

    def test_replay_log_holds_every_handler_event_in_vcpu_order(self):
        """nondet.jsonl against the simulated host trace itself: every
        handler event once, with its time and value; every injection
        delivered at the RIP of the entry that follows it on its CPU; each
        vCPU's lines in order."""
        rec = simulate(self.tmp / "sim", seed=23, duration_ms=2000, guests=2, vcpus=2)
        _, result = analyze([rec.host] + rec.guests, self.tmp / "a")
        text = subprocess.run(["babeltrace2", "--no-delta", "--clock-cycles", rec.host],
                              check=True, capture_output=True, text=True).stdout
        field = re.compile(r"(\w+) = (0x[0-9a-fA-F]+|-?\d+)")
        expected = Counter()  # (kind, value or delivered rip)
        pending_injection = {}  # cpu -> vector
        for line in text.splitlines():
            m = re.match(r"\[(\d+)\] \S+ (\w+): (.*)", line)
            if not m:
                continue
            name, fields = m.group(2), {k: int(v, 0) for k, v in field.findall(m.group(3))}
            cpu = fields["cpu_id"]
            if name == "kvm_x86_pio":
                expected[("pio", fields["val"])] += 1
            elif name == "kvm_x86_msr":
                expected[("msr", fields["data"])] += 1
            elif name == "kvm_x86_mmio":
                expected[("mmio", fields["val"])] += 1
            elif name == "kvm_x86_hypercall":
                expected[("hypercall", fields["nr"])] += 1
            elif name == "kvm_x86_inj_virq":
                pending_injection[cpu] = fields["vector"]
            elif name == "kvm_x86_entry" and cpu in pending_injection:
                expected[("interrupt", fields["rip"])] += 1
                del pending_injection[cpu]
        self.assertGreater(sum(expected.values()), 100)
        got = Counter()
        last = {}
        with open(self.tmp / "a" / "nondet.jsonl", encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                key = (e["vm"], e["vcpu"])
                if key in last:
                    self.assertEqual(e["seq"], last[key]["seq"] + 1, line)
                    self.assertGreaterEqual(e["time_ns"], last[key]["time_ns"], line)
                last[key] = e
                if e["kind"] == "interrupt":
                    self.assertEqual(e["value_state"], "delivered", line)
                    got[("interrupt", int(e["delivered_rip"], 16))] += 1
                elif e["kind"] == "hypercall":
                    got[("hypercall", int(e["nr"], 16))] += 1
                else:
                    self.assertIn(e["value_state"], ("completed", "written"), line)
                    got[(e["kind"], int(e["value"], 16))] += 1
        self.assertEqual(got, expected)
        # guest times: the guest's clock at each line's host time, within
        # the sync bound of the truth
        truth = {g["vm_uid_hex"]: g["transform"] for g in rec.truth()["guests"]}
        clock_of = {vm["id"]: (truth[vm["vm_uid"]], vm["sync"]["bound_ns"]) for vm in result["vms"]}
        worst = 0
        with open(self.tmp / "a" / "nondet.jsonl", encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                t, bound = clock_of[e["vm"]]
                self.assertEqual(t["step_ns"], 0)
                true_guest = t["guest_origin_ns"] + (e["time_ns"] - t["host_origin_ns"]) * (
                    1_000_000_000 + t["drift_ppb"]) // 1_000_000_000
                worst = max(worst, abs(e["guest_ns"] - true_guest))
                self.assertLessEqual(abs(e["guest_ns"] - true_guest), bound + 1, line)
        print(f"replay log guest times: largest error {worst} ns", file=sys.stderr)
        for vm in result["vms"]:
            log = vm["replay_log"]
            self.assertEqual(log["entries"], sum(vm["nondet"].values()))
            self.assertEqual((log["unknown_values"], log["missing_values"], log["incomplete"]), (0, 0, 0))

    def test_host_alone(self):
        rec = simulate(self.tmp / "sim", seed=22, duration_ms=1000)
        out = self.tmp / "a"
        out.mkdir()
        babeltrace(["run", "-c", "in:src.ctf.fs", "-p", params(inputs=[rec.host]),
                    "-c", "mux:filter.utils.muxer", "-c", "out:sink.vmtrace.analysis",
                    "-p", params(output_dir=str(out)),
                    "--connect", "in:mux", "--connect", "mux:out"])
        result = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
        truth = rec.truth()
        self.assertFalse((out / "vcpu_states.csv").exists())
        self.assertEqual(len(truth["guests"]), 2)
        self.assertEqual(len(result["vms"]), len(truth["guests"]))
        for vm in result["vms"]:
            self.assertIsNone(vm["guest_trace"])
            self.assertIsNone(vm["sync"])
            self.assertEqual(vm["guest_threads"], [])
            guest = next(g for g in truth["guests"] if g["vm_uid_hex"] == vm["vm_uid"])
            self.assertEqual(vm["name"], f"vm-{guest['vm_uid']:x}")

    def test_unsynchronised_guest_is_skipped_and_reported(self):
        rec = simulate(self.tmp / "sim", seed=23, duration_ms=1000)
        out = self.tmp / "a"
        out.mkdir()
        proc = babeltrace(["run", "-c", "h:src.ctf.fs", "-p", params(inputs=[rec.host]),
                           "-c", "g:src.ctf.fs", "-p", params(inputs=[rec.guest(0)]),
                           "-c", "mux:filter.utils.muxer", "-c", "out:sink.vmtrace.analysis",
                           "-p", params(output_dir=str(out)),
                           "--connect", "h:mux", "--connect", "g:mux", "--connect", "mux:out"])
        self.assertIn("vmtrace-sim-guest0` is not on the host's time base", proc.stderr)
        result = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
        self.assertTrue(all(vm["guest_trace"] is None for vm in result["vms"]))

    def test_bad_parameters_are_named(self):
        rec = simulate(self.tmp / "sim", seed=24, duration_ms=200)
        for bad, expected in [(dict(timeline_bins=3), "timeline-bins"), (dict(colour="red"), "colour"),
                              (dict(output_dir=str(self.tmp / "missing")), "does not exist")]:
            with self.subTest(**bad):
                sink = dict(output_dir=str(self.tmp))
                sink.update(bad)
                proc = babeltrace(["run", "-c", "in:src.ctf.fs", "-p", params(inputs=[rec.host]),
                                   "-c", "out:sink.vmtrace.analysis", "-p", params(**sink),
                                   "--connect", "in:out"], check=False)
                self.assertNotEqual(proc.returncode, 0)
                self.assertIn(expected, proc.stderr)


if __name__ == "__main__":
    unittest.main()
