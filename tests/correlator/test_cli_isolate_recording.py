#!/usr/bin/env python3
"""`vmtrace isolate` on the bundled real memory recording
(examples/memory-recording): the lab's L1 KVM host, its guests l2a, l2b and
l2m (migrated onto the host while it recorded) and the QEMU plugin's trace
of L1's guest-mode memory accesses.  No ground truth: the oracle is the
virtual address the plugin saw, which the join never reads, and what the
lab's programs wrote down (memwrite's pid and buffer)."""
import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, babeltrace, unpack_recording  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(SOURCE_DIR / "build" / "vmtrace"))
ARCHIVE = SOURCE_DIR / "examples" / "memory-recording" / "recording.tar.xz"
GUESTS = ("l2a", "l2b", "l2m")
PAGE = 4096
FIELD_RE = re.compile(r'(\w+) = ("(?:[^"\\]|\\.)*"|[^,}]+)')


def vmtrace(*args):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=900)


def fields(line):
    """The payload fields of one babeltrace2 text line."""
    payload = line[line.rfind("{ ") + 2:]
    out = {}
    for key, value in FIELD_RE.findall(payload):
        value = value.strip()
        out[key] = value[1:-1] if value.startswith('"') else int(value, 0) if value[:1].isdigit() else value
    return out


def seconds(line):
    """The time of one `babeltrace2 --clock-seconds` line, in ns."""
    whole, frac = line[1:line.index("]")].split(".")
    return int(whole) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def memwrite(root, guest):
    m = re.search(r"pid=(\d+) buf=(0x[0-9a-f]+) pages=(\d+)", (root / guest / "memwrite.txt").read_text())
    return int(m.group(1)), int(m.group(2), 16), int(m.group(3))


class IsolateRecordingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls._tmp, cls.tmp = unpack_recording(ARCHIVE, "vmtrace-isolate-rec-")
        cls.root = cls.tmp / "recording"
        cls.out = cls.tmp / "isolated"
        cls.traces = [cls.root / "l1" / "trace", *(cls.root / g / "trace" for g in GUESTS)]
        cls.proc = vmtrace("isolate", *cls.traces, "--memory", cls.root / "memtrace", "-o", cls.out,
                           "--tight-bounds")
        cls.report = json.loads((cls.out / "isolation.json").read_text()) if cls.proc.returncode == 0 else None

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-3000:])

    def test_every_record_the_tracer_kept_comes_out_once(self):
        stats = json.loads((self.root / "memtrace-stats.json").read_text())
        self.assertEqual(stats["lost"], 0)
        self.assertGreater(stats["recorded"], 10_000)
        self.assertEqual(self.report["records_in"], stats["recorded"])
        self.assertEqual(self.report["records_out"], stats["recorded"])
        self.assertEqual(sum(self.report["outputs"].values()), stats["recorded"])

    def test_the_join_agrees_with_the_tracers_virtual_address(self):
        va = self.report["va_check"]
        self.assertGreater(va["guest_attributed_user_va"], 500)
        self.assertEqual(va["precision"], 1.0, va["first_differing"])
        for guest in ("l2a", "l2m"):
            with self.subTest(guest=guest):
                by_vm = va["by_vm"][guest]
                self.assertEqual(by_vm["precision"], 1.0)
                self.assertGreaterEqual(by_vm["recall_outside_ambiguous"], 0.9)

    def test_memwrite_buffers_are_in_their_vm_only(self):
        for guest in ("l2a", "l2m"):
            with self.subTest(guest=guest):
                pid, buf, pages = memwrite(self.root, guest)
                text = babeltrace(["--clock-seconds", str(self.out / f"vm-{guest}")]).stdout
                found, decided, hpas, times = set(), set(), set(), []
                for line in text.splitlines():
                    if f"pid = {pid}," not in line:
                        continue
                    f = fields(line)
                    if not buf <= f["va"] < buf + pages * PAGE:
                        continue
                    if f["attribution"] == "guest":
                        self.assertEqual(f["gva"], f["va"], line)
                    # An ambiguous record carries the join's best answer,
                    # which may lack the address (gva 0).
                    if f["attribution"] in ("guest", "ambiguous") and f["gva"] == f["va"]:
                        found.add(f["va"] // PAGE)
                        hpas.add(f["hpa"] // PAGE)
                        times.append(seconds(line))
                        if f["attribution"] == "guest":
                            decided.add(f["va"] // PAGE)
                self.assertEqual(len(found), pages)
                self.assertGreaterEqual(2 * len(decided), pages)
                # While memwrite writes them, the pages are its VM's alone
                # (after that VM ends, the host may give them to another).
                for output in self.report["outputs"]:
                    if output == f"vm-{guest}":
                        continue
                    other = babeltrace(["--clock-seconds", str(self.out / output)]).stdout
                    leaked = [l for l in other.splitlines() if "hpa = " in l and fields(l)["hpa"] // PAGE in hpas
                              and min(times) <= seconds(l) <= max(times)]
                    self.assertEqual(leaked, [], f"{output} holds accesses to {guest}'s buffer pages")

    def test_the_migrated_guest_is_the_vm_it_was_migrated_into(self):
        threads = babeltrace([str(self.root / "l1" / "trace")]).stdout
        pids = {}
        for line in threads.splitlines():
            if "kvm_vm_vcpu_thread:" in line:
                f = fields(line)
                pids.setdefault(f["vm_comm"], set()).add(f["vm_pid"])
        self.assertEqual(len(pids.get("qemu-l2m", ())), 1, pids)
        self.assertEqual(len(pids.get("qemu-l2m-src", ())), 1, pids)
        vms = {vm["name"]: vm["vm_pid"] for vm in self.report["vms"]}
        self.assertEqual(vms["l2m"], next(iter(pids["qemu-l2m"])))
        # The source VM had no guest trace: named by its QEMU's vCPU threads.
        src = next(iter(pids["qemu-l2m-src"]))
        self.assertIn(f"qemu-l2m-src-{src}", vms)

    def test_the_late_guests_synchronise_without_violations(self):
        # --verify: every guest event checked against the host's guest-mode
        # intervals; then the fast path, which must reach the same quality.
        stats = self.tmp / "sync-stats.json"
        proc = vmtrace("sync", *self.traces, "-o", self.tmp / "synced", "--stats", stats, "--force", "--verify")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        machines = {m["name"]: m for m in json.loads(stats.read_text())["machines"]}
        fast_stats = self.tmp / "fast-stats.json"
        proc = vmtrace("sync", *self.traces, "-o", self.tmp / "fast", "--stats", fast_stats)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        fast = json.loads(fast_stats.read_text())
        self.assertEqual(fast["path"], "clock-rewrite")
        fast_machines = {m["name"]: m for m in fast["machines"]}
        for guest in GUESTS:
            with self.subTest(guest=guest):
                self.assertEqual(machines[guest]["quality"], "accurate")
                self.assertEqual(machines[guest]["consistency"]["violations"], 0)
                self.assertGreater(machines[guest]["consistency"]["checked"], 0)
                self.assertEqual(machines[guest]["events_in"], machines[guest]["events_out"])
                self.assertEqual(fast_machines[guest]["quality"], "accurate")
                self.assertEqual(fast_machines[guest]["events_in"], machines[guest]["events_in"])
                self.assertEqual(fast_machines[guest]["transform"], machines[guest]["transform"])


if __name__ == "__main__":
    unittest.main()
