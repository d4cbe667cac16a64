#!/usr/bin/env python3
"""filter.vmtrace.sync on a real recording: the lab's nested-KVM host and
its two guests (examples/lab-recording), traced with vmtrace's modules.

There is no ground truth here; the checks are the ones a user has: both
guests synchronised, nothing lost, few handshakes rejected, guest events
inside the host's guest-mode intervals of their vCPU, and every trace
following the event schema."""
import subprocess
import sys
import tarfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, synchronize  # noqa: E402

ARCHIVE = SOURCE_DIR / "examples" / "lab-recording" / "recording.tar.xz"
CHECKER = SOURCE_DIR / "tests" / "schema" / "check_trace_schema.py"


class LabRecordingSyncTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        with tarfile.open(ARCHIVE) as archive:
            archive.extractall(self.tmp)
        root = self.tmp / "recording"
        self.host = str(next((root / "l1" / "trace").glob("**/metadata")).parent)
        self.guests = [str(next((root / g / "trace").glob("**/metadata")).parent) for g in ("l2a", "l2b")]
        self.vm_uids = {int((root / g / "vm_uid").read_text().strip()) for g in ("l2a", "l2b")}

    def test_both_guests_are_synchronised_consistently(self):
        proc, stats = synchronize([self.host] + self.guests, self.tmp / "out")
        print(proc.stderr, file=sys.stderr)
        guests = [m for m in stats["machines"] if m["role"] == "guest"]
        self.assertEqual(len(guests), 2)
        self.assertEqual({int(m["vm_uid"], 16) for m in guests}, self.vm_uids)
        for m in stats["machines"]:
            self.assertEqual(m["events_in"], m["events_out"], m["name"])
        for m in guests:
            with self.subTest(vm_uid=m["vm_uid"]):
                self.assertEqual((m["quality"], m["mode"]), ("accurate", "synchronized"))
                self.assertGreater(m["matches"]["guest_to_host"], 50)
                self.assertLessEqual(m["anomalies"]["rejected"], 0.01 * m["matches"]["guest_to_host"] * 2)
                checked = m["consistency"]["checked"]
                self.assertGreater(checked, 0.9 * m["events_out"])
                # Under TCG, handshake latencies reach 100 us: the bound is
                # loose and a few events may land outside guest mode.
                self.assertLess(m["consistency"]["violations"], 0.01 * checked)
        self.assertEqual(stats["vm_uids_without_guest_trace"], [])

    def test_traces_follow_the_event_schema(self):
        for trace, emitter, required in [
            (self.host, "kmod-host", ["kvm_x86_entry", "kvm_x86_exit", "vmsync_gh_host", "vmsync_hg_host"]),
            (self.guests[0], "kmod-guest", ["vmsync_gh_guest", "vmsync_hg_guest"]),
            (self.guests[1], "kmod-guest", ["vmsync_gh_guest", "vmsync_hg_guest"])]:
            with self.subTest(trace=trace):
                proc = subprocess.run([sys.executable, str(CHECKER), trace, "--emitter", emitter, "--emitter",
                                       "lttng-modules", "--require"] + required,
                                      capture_output=True, text=True, check=False)
                self.assertEqual(proc.returncode, 0, proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
