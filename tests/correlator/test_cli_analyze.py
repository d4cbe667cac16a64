#!/usr/bin/env python3
"""`vmtrace analyze`: the lab's real recording and a simulated one, the
command's outputs, its consistency on real data, and its bad inputs."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, babeltrace, params, simulate  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(SOURCE_DIR / "build" / "vmtrace"))
ARCHIVE = SOURCE_DIR / "examples" / "lab-recording" / "recording.tar.xz"
STATES = ["guest", "hypervisor", "preempted", "idle", "unknown"]


def vmtrace(*args, env=None):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=600,
                          env=env)


def one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in text and "terminate called" not in text


class CliAnalyzeLabTest(unittest.TestCase):
    """The bundled nested-KVM recording: no ground truth, so the checks are
    consistency checks against the trace itself."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="vmtrace-analyze-")
        cls.tmp = Path(cls._tmp.name)
        with tarfile.open(ARCHIVE) as archive:
            archive.extractall(cls.tmp)
        root = cls.tmp / "recording"
        cls.host = root / "l1" / "trace"
        cls.guests = [root / "l2a" / "trace", root / "l2b" / "trace"]
        cls.vm_uids = {g: int((root / g / "vm_uid").read_text().strip()) for g in ("l2a", "l2b")}
        cls.out = cls.tmp / "analysis"
        cls.proc = vmtrace("analyze", "--intervals", cls.host, *cls.guests, "-o", cls.out)
        cls.result = json.loads((cls.out / "analysis.json").read_text(encoding="utf-8"))

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_both_vms_are_found_named_and_synchronised(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        vms = {vm["name"]: vm for vm in self.result["vms"]}
        self.assertEqual(sorted(vms), ["l2a", "l2b"])
        for name, vm in vms.items():
            self.assertEqual(int(vm["vm_uid"], 16), self.vm_uids[name])
            self.assertEqual(vm["guest_trace"], name)
            self.assertEqual(vm["qemu_comm"], f"qemu-{name}")
            self.assertEqual(vm["sync"]["quality"], "accurate")
            self.assertEqual(sorted(v["vcpu"] for v in vm["vcpus"]), [0, 1])
            self.assertGreater(vm["guest_migrations"]["count"], 0)
            self.assertGreater(len(vm["guest_threads"]), 3)
        self.assertEqual(self.result["events"]["reordered"], 0)
        self.assertIn("VM l2a (vm_uid", self.proc.stdout)
        self.assertIn("vmtrace report", self.proc.stdout)

    def test_states_cover_the_trace_and_exits_match_the_trace(self):
        span = self.result["end_ns"] - self.result["begin_ns"]
        for vm in self.result["vms"]:
            for v in vm["vcpus"]:
                self.assertEqual(sum(v["states_ns"][s] for s in STATES), span)
                self.assertGreater(v["states_ns"]["guest"], 0)
                # guest mode and the hypervisor run on a physical CPU
                self.assertEqual(sum(v["pcpu_residency_ns"].values()),
                                 v["states_ns"]["guest"] + v["states_ns"]["hypervisor"])
        # every kvm_x86_exit of the trace is counted once
        text = babeltrace([str(self.host)]).stdout
        exits = Counter(int(m.group(1)) for m in re.finditer(r"kvm_x86_exit: .*? vcpu_id = (\d+),", text))
        counted = Counter()
        for vm in self.result["vms"]:
            for v in vm["vcpus"]:
                counted[v["vcpu"]] += v["exits"]
        self.assertEqual(sum(exits.values()) - self.result["events"]["unattributed"], sum(counted.values()))
        self.assertEqual(self.result["events"]["unattributed"], 0)
        self.assertEqual(exits, counted)

    def test_csv_files(self):
        with open(self.out / "vms.csv", encoding="utf-8", newline="") as f:
            self.assertEqual([r["name"] for r in csv.DictReader(f)], ["l2a", "l2b"])
        with open(self.out / "nondet.csv", encoding="utf-8", newline="") as f:
            kinds = Counter(r["kind"] for r in csv.DictReader(f))
        self.assertGreater(kinds["pio"], 0)
        self.assertGreater(kinds["hypercall"], 0)
        self.assertEqual(sum(kinds.values()), sum(sum(vm["nondet"].values()) for vm in self.result["vms"]))
        with open(self.out / "exits.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertTrue(any(r["reason"] == "VMMCALL" for r in rows))
        self.assertEqual((self.out / "summary.txt").read_text(encoding="utf-8").splitlines()[0],
                         self.proc.stdout.splitlines()[0])

    def test_synchronized_input_gives_the_same_host_results(self):
        synced = self.tmp / "synced"
        proc = vmtrace("sync", self.host, *self.guests, "-o", synced, "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = self.tmp / "again"
        proc = vmtrace("analyze", "--synchronized", "-q", synced, "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "")
        again = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
        self.assertFalse((out / "vcpu_states.csv").exists())
        for a, b in zip(self.result["vms"], again["vms"]):
            self.assertEqual(a["name"], b["name"])
            self.assertEqual([v["states_ns"] for v in a["vcpus"]], [v["states_ns"] for v in b["vcpus"]])
            self.assertIsNone(b["sync"])  # not synchronised by this run


class CliAnalyzeBadInputTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="vmtrace-cli-")
        root = Path(cls._shared.name)
        cls.rec = simulate(root / "sim", seed=41, duration_ms=500)
        cls.nosync = simulate(root / "nosync", seed=42, duration_ms=500, guest_sync=False)
        cls.ust = root / "ust"
        shutil.copytree(cls.rec.host, cls.ust)
        metadata = cls.ust / "metadata"
        metadata.write_text(metadata.read_text().replace('domain = "kernel"', 'domain = "ust"'))

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def check_refusal(self, proc, status, text):
        self.assertEqual(proc.returncode, status, proc.stderr)
        self.assertTrue(one_line(proc.stderr), proc.stderr)
        self.assertIn(text, proc.stderr)

    def test_usage_errors(self):
        self.check_refusal(vmtrace("analyze", "--bogus"), 2, "--bogus")
        self.check_refusal(vmtrace("analyze", self.rec.host), 2, "-o DIR")
        self.check_refusal(vmtrace("analyze", "-o", self.tmp / "o"), 2, "host trace")
        self.check_refusal(vmtrace("analyze", self.tmp / "missing", "-o", self.tmp / "o"), 2, "not a directory")
        (self.tmp / "empty").mkdir()
        self.check_refusal(vmtrace("analyze", self.tmp / "empty", "-o", self.tmp / "o"), 2, "no CTF trace")
        self.check_refusal(vmtrace("analyze", self.rec.host, "-o", self.tmp / "o", "--timeline-bins", "7"), 1,
                           "timeline-bins")

    def test_not_a_kernel_trace(self):
        self.check_refusal(vmtrace("analyze", self.ust, "-o", self.tmp / "o"), 1, "not an LTTng kernel trace")

    def test_guest_without_sync_events(self):
        out = self.tmp / "o"
        proc = vmtrace("analyze", "-q", self.nosync.host, self.nosync.guest(0), "-o", out)
        self.check_refusal(proc, 1, "vmtrace-sim-guest0` is not on the host's time base")
        self.assertIn("no vmsync events", proc.stderr)
        self.assertTrue((out / "analysis.json").exists(), "the host's results are still written")

    def test_missing_plugin(self):
        env = dict(os.environ, VMTRACE_PLUGIN_DIR=str(self.tmp))
        self.check_refusal(vmtrace("analyze", self.rec.host, "-o", self.tmp / "o", env=env), 3,
                           "cannot find the babeltrace2 plugin")

    def test_unwritable_output(self):
        blocker = self.tmp / "file"
        blocker.write_text("x")
        self.check_refusal(vmtrace("analyze", self.rec.host, "-o", blocker / "sub"), 2, "output directory")

    def test_host_alone_and_help(self):
        proc = vmtrace("analyze", self.rec.host, "-o", self.tmp / "o")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("2 VMs, 4 vCPUs", proc.stdout)
        proc = vmtrace("analyze", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--synchronized", proc.stdout)


if __name__ == "__main__":
    unittest.main()
