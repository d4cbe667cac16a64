#!/usr/bin/env python3
"""`vmtrace isolate`: simulated machines with a memory tracer, checked
access by access against the simulator's ground truth; the outputs read
back; lost records; and every bad input the command must refuse or warn
about."""
import json
import os
import shutil
import struct
import subprocess
import sys
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, babeltrace, simulate  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(SOURCE_DIR / "build" / "vmtrace"))
ATTRIBUTIONS = ["guest", "guest-kernel", "shared-other", "host-on-behalf", "host", "ambiguous", "before-map"]


def vmtrace(*args):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=600)


def simulate_memory(out_dir, **scenario):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scenario.setdefault("memory", True)
    scenario.setdefault("memory_truth", str(out_dir / "memory-truth.bin"))
    return simulate(out_dir, **scenario)


def isolate(rec, out, *extra, guests=None):
    guests = rec.guests if guests is None else guests
    return vmtrace("isolate", rec.host, *guests, "--memory", rec.memory, "-o", out, *extra)


def truth_records(path):
    """The memory ground truth's records: (vm, attribution, lost) of each."""
    data = Path(path).read_bytes()
    assert data[:8] == b"VMTMEMT1"
    offset = 8 + 8 + 8
    (guests,) = struct.unpack_from("<I", data, offset)
    offset += 4
    for _ in range(guests):
        (length,) = struct.unpack_from("<H", data, offset)
        offset += 2 + length
    records = []
    for start in range(offset, len(data), 64):
        fields = struct.unpack_from("<qqQQQiiiiIBBBB", data, start)
        records.append((fields[5], fields[12], fields[13]))
    return records


class IsolateAccuracyTest(TempDirTestCase):
    """Several seeds, two and three guests: every access the join decides
    is exactly what the ground truth says."""

    SCENARIOS = [
        dict(seed=5, guests=2, vcpus=2, duration_ms=150),
        dict(seed=11, guests=3, vcpus=2, duration_ms=120, memory_huge_share=0.5, memory_remap_us=200),
        dict(seed=23, guests=2, vcpus=3, duration_ms=100, memory_accesses_per_us=1.0, memory_exec_us=5000,
             memory_munmap_us=1000),
    ]

    def test_every_decided_access_matches_the_truth(self):
        for n, scenario in enumerate(self.SCENARIOS):
            with self.subTest(**scenario):
                rec = simulate_memory(self.tmp / f"s{n}", **scenario)
                out = self.tmp / f"s{n}-isolated"
                proc = isolate(rec, out, "--truth", self.tmp / f"s{n}" / "memory-truth.bin")
                self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
                self.assertIn("against the ground truth", proc.stderr)
                report = json.loads((out / "isolation.json").read_text())
                accuracy = report["accuracy"]
                self.assertEqual(accuracy["mismatched"], 0, accuracy["examples"])
                self.assertEqual(accuracy["missing"], 0)
                self.assertEqual(accuracy["beyond_truth"], 0)
                self.assertLess(accuracy["ambiguous_ratio"], 0.15)
                self.assertGreater(accuracy["exact"], 0.5 * accuracy["compared"])
                self.assertTrue(accuracy["time_error_ns"]["within_bound"], accuracy["time_error_ns"])
                # The join says before-map only where the truth does (the
                # CPU runs a vCPU and the host mapping predates the trace),
                # but for accesses at a guest-mode edge it could not place.
                self.assertGreater(accuracy["before_map_in_truth_too"], 0.9 * accuracy["before_map"])
                # Records in = out, per output and in total, = the truth's.
                truth = rec.truth()["memory"]
                self.assertEqual(report["records_in"], truth["written"])
                self.assertEqual(report["records_out"], report["records_in"])
                self.assertEqual(sum(report["outputs"].values()), report["records_in"])
                names = {f"vm-vmtrace-sim-guest{g}" for g in range(scenario["guests"])}
                self.assertEqual(set(report["outputs"]) - {"host"}, names)
                for name in names | {"host"}:
                    self.assertTrue((out / name / "metadata").exists(), name)
                # Every attribution the scenario makes appears.
                for kind in ATTRIBUTIONS:
                    self.assertGreater(report["by_attribution"][kind], 0, kind)
                # Per VM, the join's totals differ from the truth's at most
                # by the accesses it could not decide.
                ambiguous = report["by_attribution"]["ambiguous"]
                for vm in report["vms"]:
                    self.assertLessEqual(abs(vm["accesses"] - sum(truth["by_vm"][vm["name"]].values())), ambiguous)
                    self.assertGreater(vm["working_set_pages"], 0)
                    self.assertTrue(vm["processes"])
                    self.assertTrue(vm["working_set_over_time"])

    def test_tight_bounds_decide_more_and_stay_exact(self):
        # The bounds the synchronisation applied are no wider than the one it
        # announced: with them the join decides at least as much, and every
        # decided access still matches the truth, its time within the bound.
        rec = simulate_memory(self.tmp / "tb", seed=9, duration_ms=150, max_drift_ppm=80)
        truth = self.tmp / "tb" / "memory-truth.bin"
        reports = {}
        for flag in ("", "--tight-bounds"):
            out = self.tmp / f"tb-out{flag}"
            proc = isolate(rec, out, "--truth", truth, *([flag] if flag else []))
            self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
            reports[flag] = json.loads((out / "isolation.json").read_text())
            self.assertFalse((out / "sync-stats.first-pass.json").exists())
        loose, tight = reports[""], reports["--tight-bounds"]
        self.assertLessEqual(tight["memory_trace"]["sync_bound_ns"], loose["memory_trace"]["sync_bound_ns"])
        self.assertLessEqual(tight["by_attribution"]["ambiguous"], loose["by_attribution"]["ambiguous"])
        self.assertEqual(tight["accuracy"]["mismatched"], 0, tight["accuracy"]["examples"])
        self.assertTrue(tight["accuracy"]["time_error_ns"]["within_bound"], tight["accuracy"]["time_error_ns"])
        self.assertEqual(tight["records_in"], loose["records_in"])

    def test_statedump_decides_the_pages_mapped_before_tracing(self):
        # The host module's mapping statedump (kvm_tdp_mmu_map op 4 at the
        # start) makes the pages mapped before tracing known: the accesses
        # the join called before-map are decided, as the truth says.
        by = {}
        for statedump in (False, True):
            rec = simulate_memory(self.tmp / f"sd{statedump}", seed=7, duration_ms=100, memory_statedump=statedump)
            ops = Counter(int(line.split("op = ")[1].split()[0].rstrip(",")) for line in
                          babeltrace([str(rec.host)]).stdout.splitlines() if "kvm_tdp_mmu_map:" in line)
            self.assertEqual(ops[4] > 0, statedump, ops)
            out = self.tmp / f"sd{statedump}-isolated"
            proc = isolate(rec, out, "--truth", self.tmp / f"sd{statedump}" / "memory-truth.bin", "-q")
            self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
            report = json.loads((out / "isolation.json").read_text())
            self.assertEqual(report["accuracy"]["mismatched"], 0, report["accuracy"]["examples"])
            by[statedump] = report["by_attribution"]
        self.assertGreater(by[False]["before-map"], 1000)
        self.assertLess(by[True]["before-map"], by[False]["before-map"] / 20)
        self.assertGreater(by[True]["guest-kernel"], by[False]["guest-kernel"])

    def test_breaking_the_guest_side_is_caught(self):
        # Without guest mapping events the truth (which assumes them) and
        # the join disagree: the check is able to fail.
        rec = simulate_memory(self.tmp / "rec", seed=3, duration_ms=100, memory_guest_mappings=False)
        out = self.tmp / "isolated"
        proc = isolate(rec, out, "--truth", self.tmp / "rec" / "memory-truth.bin")
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        accuracy = json.loads((out / "isolation.json").read_text())["accuracy"]
        self.assertGreater(accuracy["mismatched"], 0)
        self.assertIn("guest -> guest-kernel", accuracy["confusion"])


class IsolateOutputTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()

    def test_outputs_read_back_with_the_annotations(self):
        rec = simulate_memory(self.tmp / "rec", seed=8, duration_ms=100)
        out = self.tmp / "isolated"
        proc = isolate(rec, out, "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertEqual(proc.stderr, "")
        report = json.loads((out / "isolation.json").read_text())
        for name, count in report["outputs"].items():
            text = babeltrace([str(out / name)]).stdout.splitlines()
            self.assertEqual(len(text), count, name)
            kinds = Counter(line.split('attribution = "')[1].split('"')[0] for line in text)
            if name == "host":
                # no VM owns the page, or the best estimate of an ambiguous one
                self.assertLessEqual(set(kinds), {"host", "ambiguous"})
                self.assertIn("host", kinds)
            else:
                self.assertNotIn("host", kinds)
                guest_line = next(line for line in text if 'attribution = "guest"' in line)
                self.assertRegex(guest_line, r"gva = 0x[1-9A-F]")
                self.assertRegex(guest_line, r"pid = [1-9]")
        summary = (out / "summary.txt").read_text()
        self.assertIn("records in", summary)
        self.assertTrue((out / "sync-stats.json").exists())

    def test_lost_records_are_reported_and_in_equals_out(self):
        rec = simulate_memory(self.tmp / "rec", seed=6, duration_ms=100, memory_lost_every=20000,
                              memory_lost_burst=300)
        out = self.tmp / "isolated"
        proc = isolate(rec, out, "--truth", self.tmp / "rec" / "memory-truth.bin", "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        report = json.loads((out / "isolation.json").read_text())
        lost = sum(1 for _, _, lost in truth_records(self.tmp / "rec" / "memory-truth.bin") if lost)
        self.assertGreater(lost, 0)
        self.assertEqual(report["lost"]["tracer_reported"], lost)
        self.assertEqual(report["accuracy"]["lost_in_truth"], lost)
        self.assertEqual(report["accuracy"]["mismatched"], 0)
        self.assertEqual(report["records_in"], report["records_out"])

    def test_force_replaces_only_an_isolate_output(self):
        rec = simulate_memory(self.tmp / "rec", seed=2, duration_ms=100)
        out = self.tmp / "isolated"
        self.assertEqual(isolate(rec, out, "-q").returncode, 0)
        again = isolate(rec, out, "-q")
        self.assertEqual(again.returncode, 2, again.stderr)
        self.assertEqual(isolate(rec, out, "-q", "--force").returncode, 0)


class IsolateBadInputTest(TempDirTestCase):
    def test_memory_trace_without_a_host(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100)
        proc = vmtrace("isolate", rec.guest(0), "--memory", rec.memory, "-o", self.tmp / "out")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("vmtrace-sim-memtracer", proc.stderr)
        self.assertFalse((self.tmp / "out").exists())

    def test_host_without_mapping_events_warns_and_gives_no_vm(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100, memory_host_mappings=False)
        out = self.tmp / "out"
        proc = isolate(rec, out)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn("kvm_tdp_mmu_map", proc.stderr)
        report = json.loads((out / "isolation.json").read_text())
        by = report["by_attribution"]
        self.assertEqual(by["guest"] + by["guest-kernel"] + by["shared-other"] + by["host-on-behalf"], 0)
        self.assertGreater(by["before-map"], 0)
        self.assertEqual(report["records_in"], report["records_out"])

    def test_guest_without_mapping_events_warns(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100, memory_guest_mappings=False)
        out = self.tmp / "out"
        proc = isolate(rec, out)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn("guest_mm_map", proc.stderr)
        self.assertEqual(json.loads((out / "isolation.json").read_text())["by_attribution"]["guest"], 0)

    def test_contradicting_mapping_events_are_counted_and_named(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100, memory_drop_host_mapping_every=7,
                              memory_remap_us=100)
        out = self.tmp / "out"
        proc = isolate(rec, out)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        report = json.loads((out / "isolation.json").read_text())
        kinds = report["contradictions"]
        self.assertTrue({"remove-unknown", "change-wrong-old", "install-over-live"} & set(kinds), kinds)
        for kind, entry in kinds.items():
            self.assertGreater(entry["count"], 0)
            self.assertTrue(entry["first"])
            self.assertIn(kind, proc.stderr)
        self.assertEqual(report["records_in"], report["records_out"])

    def test_memory_clock_that_cannot_be_aligned(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100, memory_sync=False)
        proc = isolate(rec, self.tmp / "out")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("vmtrace-sim-memtracer", proc.stderr)
        self.assertFalse((self.tmp / "out").exists())

    def test_corrupt_memory_trace(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100)
        damaged = self.tmp / "damaged"
        shutil.copytree(rec.memory, damaged)
        stream = max((p for p in damaged.iterdir() if p.name != "metadata"), key=lambda p: p.stat().st_size)
        data = bytearray(stream.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64  # a packet header or event torn
        stream.write_bytes(bytes(data[: len(data) - 37]))
        proc = vmtrace("isolate", rec.host, *rec.guests, "--memory", damaged, "-o", self.tmp / "out")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        self.assertFalse((self.tmp / "out").exists())

    def test_a_file_that_is_no_ground_truth(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100)
        bogus = self.tmp / "bogus.bin"
        bogus.write_bytes(b"not a truth at all" * 10)
        proc = isolate(rec, self.tmp / "out", "--truth", bogus)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("not a vmtrace memory ground truth", proc.stderr)

    def test_usage_errors(self):
        rec = simulate_memory(self.tmp / "rec", seed=1, duration_ms=100)
        for args in (["isolate", rec.host, "-o", self.tmp / "o1"],
                     ["isolate", rec.host, "--memory", rec.memory],
                     ["isolate", "--memory", rec.memory, "-o", self.tmp / "o2"],
                     ["isolate", rec.host, "--memory", rec.memory, "-o", self.tmp / "o3", "--bin-ms", "0"],
                     ["isolate", rec.host, "--memory", rec.memory, "-o", rec.memory]):
            with self.subTest(args=args[1:]):
                proc = vmtrace(*args)
                self.assertEqual(proc.returncode, 2, proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
