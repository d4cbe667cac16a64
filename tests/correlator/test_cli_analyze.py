#!/usr/bin/env python3
"""`vmtrace analyze`: the lab's real recording and a simulated one, the
command's outputs, its consistency on real data, and its bad inputs."""
import csv
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, babeltrace, params, simulate, unpack_recording  # noqa: E402

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
        cls._tmp, cls.tmp = unpack_recording(ARCHIVE, "vmtrace-analyze-")
        root = cls.tmp / "recording"
        cls.host = root / "l1" / "trace"
        cls.guests = [root / "l2a" / "trace", root / "l2b" / "trace"]
        cls.vm_uids = {g: int((root / g / "vm_uid").read_text().strip()) for g in ("l2a", "l2b")}
        cls.out = cls.tmp / "analysis"
        cls.proc = vmtrace("analyze", "--intervals", "--snapshots", "1000", cls.host, *cls.guests, "-o", cls.out)
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
        # the loops below check each vCPU: there must be the lab's 2 x 2
        self.assertEqual(sorted((vm["name"], len(vm["vcpus"])) for vm in self.result["vms"]),
                         [("l2a", 2), ("l2b", 2)])
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

    def test_snapshots_add_up_to_the_analysis(self):
        """--snapshots: one object per second of host time, contiguous, the
        last one final; the exits of every interval add up to analysis.json's
        per vCPU and per reason."""
        with open(self.out / "snapshots.jsonl", encoding="utf-8") as f:
            snaps = [json.loads(line) for line in f]
        self.assertGreater(len(snaps), 10)
        for a, b in zip(snaps, snaps[1:]):
            self.assertEqual(a["end_ns"], b["begin_ns"])
        # whole seconds, save the last, which ends with the trace
        for snap in snaps[:-1]:
            self.assertEqual(snap["end_ns"] - snap["begin_ns"], 1_000_000_000)
            self.assertEqual(snap["begin_ns"] % 1_000_000_000, 0)
        self.assertLessEqual(snaps[-1]["covered_ns"], 1_000_000_000)
        self.assertEqual([s.get("final", False) for s in snaps], [False] * (len(snaps) - 1) + [True])
        # An interval names a VM as it is known by then: by its QEMU until
        # the host's handshakes give its vm_uid, by its guest once the
        # guest's trace is tied to it.
        by_uid = {vm["vm_uid"]: vm["name"] for vm in self.result["vms"]}
        by_qemu = {vm["qemu_comm"]: vm["name"] for vm in self.result["vms"]}
        per_vcpu, per_reason = Counter(), Counter()
        for snap in snaps:
            for vm in snap["vms"]:
                name = by_uid[vm["vm_uid"]] if vm["vm_uid"] else by_qemu[vm["name"]]
                for v in vm["vcpus"]:
                    per_vcpu[(name, v["vcpu"])] += v["exits"]
                    for r in v["exit_reasons"]:
                        per_reason[(name, r["reason"])] += r["count"]
                    self.assertEqual(v["exits"], sum(r["count"] for r in v["exit_reasons"]))
        expected = Counter()
        for vm in self.result["vms"]:
            for v in vm["vcpus"]:
                expected[(vm["name"], v["vcpu"])] = v["exits"]
        self.assertEqual(per_vcpu, expected)
        self.assertGreater(sum(per_reason.values()), 0)

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

    def test_replay_log(self):
        """nondet.jsonl on a real host trace (L1's KVM, SVM): the reads
        QEMU completed carry their values, injections their landing RIP."""
        kinds = Counter()
        per_vm = Counter()
        landed = Counter()
        with open(self.out / "nondet.jsonl", encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                per_vm[e["vm"]] += 1
                kinds[(e["kind"], e.get("op"), e["value_state"], e.get("completed_by"))] += 1
                if e["value_state"] in ("completed", "written"):
                    int(e["value"], 16)
                if e["kind"] == "interrupt" and e["value_state"] == "delivered":
                    # the guest kernel (idle loop, interrupted code), user
                    # space, or the firmware while the guest boots
                    rip = int(e["delivered_rip"], 16)
                    landed["kernel" if rip >= 0xffff800000000000 else "other"] += 1
        self.assertGreater(kinds[("pio", "in", "completed", None)], 1000)
        self.assertGreater(kinds[("mmio", "read", "completed", "user-space")], 0)
        self.assertGreater(kinds[("mmio", "read", "completed", "kernel")], 0)
        self.assertGreater(kinds[("interrupt", "inject", "delivered", None)], 1000)
        self.assertGreater(landed["kernel"], 0.5 * sum(landed.values()))
        for vm in self.result["vms"]:
            log = vm["replay_log"]
            self.assertEqual(per_vm[vm["id"]], log["entries"])
            # every exit's access was recorded, save a handful at most
            self.assertLess(log["unknown_values"] + log["missing_values"] + log["incomplete"], log["entries"] / 1000)
        self.assertIn("replay log (nondet.jsonl)", self.proc.stdout)
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
        # Whole lists compared, not zipped: a second run that finds fewer VMs
        # or vCPUs (or none) must fail here.
        self.assertEqual([vm["name"] for vm in again["vms"]], ["l2a", "l2b"])
        self.assertEqual([vm["name"] for vm in self.result["vms"]], [vm["name"] for vm in again["vms"]])
        self.assertEqual([[v["states_ns"] for v in vm["vcpus"]] for vm in self.result["vms"]],
                         [[v["states_ns"] for v in vm["vcpus"]] for vm in again["vms"]])
        self.assertEqual([vm["sync"] for vm in again["vms"]], [None, None])  # not synchronised by this run


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
        self.check_refusal(vmtrace("analyze", self.rec.host, "-o", self.tmp / "o", "--timeline-bins", "7"), 2,
                           "timeline-bins")
        self.check_refusal(vmtrace("analyze", self.rec.host, "-o", self.tmp / "o", "--snapshots", "0"), 2,
                           "--snapshots 0")

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

    def test_older_host_module_gives_unknown_values_not_zero(self):
        """A host trace without KVM's handler events (an older module):
        the replay log still names each port, MSR and hypercall exit, with
        its value unknown, and the summary counts them."""
        rec = simulate(self.tmp / "old", seed=44, duration_ms=500, handler_events=False)
        out = self.tmp / "o"
        proc = vmtrace("analyze", rec.host, *rec.guests, "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        kinds = Counter()
        with open(out / "nondet.jsonl", encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                kinds[e["kind"]] += 1
                self.assertIsNone(e["value"], line)
                self.assertEqual(e["value_state"], "unknown", line)
                self.assertIsNotNone(e["rip"], line)
        self.assertGreater(kinds["pio"], 0)
        self.assertGreater(kinds["msr"], 0)
        self.assertEqual(kinds["interrupt"] + kinds["mmio"], 0, "nothing to say without the handler events")
        result = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
        unknown = [vm["replay_log"]["unknown_values"] for vm in result["vms"]]
        self.assertEqual(sum(unknown), sum(kinds.values()))
        for n in unknown:
            self.assertIn(f"values unknown {n},", proc.stdout)

    def test_host_alone_and_help(self):
        proc = vmtrace("analyze", self.rec.host, "-o", self.tmp / "o")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("2 VMs, 4 vCPUs", proc.stdout)
        proc = vmtrace("analyze", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--synchronized", proc.stdout)


class CliAnalyzeDamagedTraceTest(TempDirTestCase):
    """Damaged copies of a simulated recording: a value that would size
    memory, timestamps out of order, a field wider than docs/events.json.
    Each is refused with one line naming the trace and the event, status 1."""

    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="vmtrace-damaged-")
        # handshakes 200 ms apart: a shifted host event leaves them in order
        cls.rec = simulate(Path(cls._shared.name), seed=43, duration_ms=1000, sync_period_us=200_000)

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def setUp(self):
        super().setUp()
        shutil.copytree(self.rec.root, self.tmp / "rec")
        self.host = next((self.tmp / "rec").glob("vmtrace-sim-host/*/kernel"))
        self.guest = next((self.tmp / "rec").glob("vmtrace-sim-guest0/*/kernel"))
        self.guests = sorted((self.tmp / "rec").glob("vmtrace-sim-guest*/*/kernel"))

    def analyze(self, *traces):
        return vmtrace("analyze", "-q", *traces, "-o", self.tmp / "out")

    def check_refusal(self, proc, texts):
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertTrue(one_line(proc.stderr), proc.stderr)
        for text in texts:
            self.assertIn(text, proc.stderr)

    def set_dest_cpu(self, value):
        """Writes `value` into the dest_cpu of the guest's first
        sched_migrate_task, found by its payload's bytes."""
        text = babeltrace([str(self.guest)]).stdout
        m = re.search(r'sched_migrate_task: \{ cpu_id = \d+ \}, \{ comm = "([^"]*)", tid = (-?\d+), prio = (-?\d+), '
                      r'orig_cpu = (-?\d+), dest_cpu = (-?\d+) \}', text)
        self.assertIsNotNone(m, "the guest has no sched_migrate_task")
        payload = m.group(1).encode() + b"\0" + struct.pack("<iiii", *(int(g) for g in m.groups()[1:]))
        for stream in sorted(self.guest.glob("stream*")):
            data = stream.read_bytes()
            at = data.find(payload)
            if at >= 0:
                at += len(payload) - 4
                stream.write_bytes(data[:at] + struct.pack("<i", value) + data[at + 4:])
                return
        self.fail("the event's payload is in no stream file")

    def test_a_damaged_cpu_number_is_refused_not_allocated(self):
        self.set_dest_cpu(524289)  # once: a 24 GB migration matrix
        self.check_refusal(self.analyze(self.host, *self.guests),
                           ["trace `vmtrace-sim-guest0`: event `sched_migrate_task` at ", "dest_cpu 524289"])

    def test_a_failed_run_keeps_the_earlier_results_and_runs_never_mix(self):
        out = self.tmp / "out"
        (out).mkdir()
        (out / "notes.txt").write_text("the user's")
        proc = vmtrace("analyze", "-q", "--intervals", self.host, *self.guests, "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        before = {f.name: f.read_bytes() for f in out.iterdir()}
        inode = (out / "analysis.json").stat().st_ino
        self.assertIn("vcpu_states.csv", before)
        self.set_dest_cpu(524289)
        self.check_refusal(self.analyze(self.host, *self.guests), ["dest_cpu 524289"])
        after = {f.name: f.read_bytes() for f in out.iterdir()}
        self.assertEqual(sorted(after), sorted(before), "a failed run writes nothing and leaves no staging directory")
        self.assertTrue(after == before, "a failed run changed the earlier results")
        self.assertEqual((out / "analysis.json").stat().st_ino, inode)
        # a later run without --intervals: its results, and no earlier vcpu_states.csv beside them
        proc = vmtrace("analyze", "-q", self.host, "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        names = sorted(f.name for f in out.iterdir())
        self.assertEqual(names, sorted(set(before) - {"vcpu_states.csv", "sync.json"}))
        self.assertEqual((out / "notes.txt").read_text(), "the user's")
        self.assertNotEqual((out / "analysis.json").stat().st_ino, inode)
        self.assertEqual(json.loads((out / "analysis.json").read_text())["events"]["guests"], 0)

    def test_a_cpu_the_trace_does_not_declare_is_refused(self):
        self.set_dest_cpu(7)  # the guest has vCPUs 0 and 1
        self.check_refusal(self.analyze(self.host, *self.guests),
                           ["trace `vmtrace-sim-guest0`: event `sched_migrate_task` at ",
                            "dest_cpu 7, a CPU none of the trace's packets declares (CPUs 0-1)"])

    def shift_event(self, delta_ns):
        """Moves the first event of a host stream's second packet delta_ns
        later: the rest of that packet comes out of order.  sink.ctf.fs's
        layout: packet header (magic, uuid, stream ids: 36 bytes), packet
        context (packet_size ... cpu_id: 44 bytes), event header (id,
        timestamp: 64 bits each), clock at 1 GHz."""
        for stream in sorted(self.host.glob("stream*")):
            data = bytearray(stream.read_bytes())
            self.assertEqual(struct.unpack_from("<I", data, 0)[0], 0xC1FC1FC1)
            size = struct.unpack_from("<Q", data, 36)[0] // 8
            if size < len(data):
                at = size + 80 + 8
                struct.pack_into("<Q", data, at, struct.unpack_from("<Q", data, at)[0] + delta_ns)
                stream.write_bytes(data)
                return
        self.fail("no host stream has two packets")

    def test_host_events_out_of_order_fail_past_a_threshold(self):
        self.shift_event(1_000_000)  # a few events: taken at the earlier time, with a warning
        proc = vmtrace("analyze", "-q", self.host, *self.guests, "-o", self.tmp / "few")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        result = json.loads((self.tmp / "few" / "analysis.json").read_text(encoding="utf-8"))
        self.assertGreater(result["events"]["reordered"], 0)
        self.shift_event(20_000_000)  # many: the timestamps are damaged
        self.check_refusal(self.analyze(self.host, *self.guests),
                           ["trace `vmtrace-sim-host`: ", "are older than an event before them", "damaged timestamps"])

    def test_a_field_wider_than_the_schema_is_refused(self):
        metadata = self.host / "metadata"
        text = metadata.read_text()
        narrow = "integer { size = 32; align = 8; signed = true; } _prev_tid;"
        self.assertIn(narrow, text)
        metadata.write_text(text.replace(narrow, narrow.replace("size = 32", "size = 64")))
        self.check_refusal(self.analyze(self.host),
                           ["trace `vmtrace-sim-host`: event `sched_switch` declares field `prev_tid` as a 64-bit "
                            "integer, docs/events.json says s32"])


if __name__ == "__main__":
    unittest.main()
