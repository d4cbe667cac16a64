#!/usr/bin/env python3
"""Flipped bytes in the bundled lab recording (examples/lab-recording): at
40 offsets spread over the host's and a guest's metadata and stream files,
`vmtrace sync` or `vmtrace analyze` must end on its own (no hang), by exit
status (no signal), and never with exit 0 and results that lost or changed
what the clean recording gives.

CTF carries no checksum: a flipped byte inside one event's payload (a
thread name, a field value) changes that value and no reader can tell.  So
exit 0 must give the clean run's structure: the same machines, the same
event counts in and out, the same synchronisation quality and mode, the
same VMs and vCPUs.  The host is cut to one 4 MiB packet of its stream
(the one the guest's handshakes fall in) to keep the runs short."""
import json
import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, unpack_recording  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))
ARCHIVE = SOURCE_DIR / "examples" / "lab-recording" / "recording.tar.xz"
HOST_PACKET = 6          # the host stream's packet holding l2a's handshakes (4 MiB packets)
PACKET_BYTES = 4 << 20
TIMEOUT_S = 60
PER_FILE = 8             # offsets per file; 5 files: 40 runs


def run(*args):
    proc = subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False,
                          timeout=TIMEOUT_S)
    return proc


def offsets(size):
    """Deterministic: two in the first packet's header (its magic; the high byte of a metadata
    packet's content size, which made the reader loop forever), the rest spread evenly."""
    spread = [size * (2 * k + 1) // (2 * (PER_FILE - 2)) for k in range(PER_FILE - 2)]
    return [1, 27] + spread


def sync_summary(stats_path):
    stats = json.loads(Path(stats_path).read_text(encoding="utf-8"))
    return sorted((m["name"], m["role"], m["events_in"], m["events_out"], m.get("quality"), m.get("mode"))
                  for m in stats["machines"])


def analysis_summary(out):
    analysis = json.loads((Path(out) / "analysis.json").read_text(encoding="utf-8"))
    vms = sorted((vm["name"], len(vm["vcpus"]), (vm.get("sync") or {}).get("quality")) for vm in analysis["vms"])
    return analysis["events"], vms


class FlippedBytesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp, cls.tmp = unpack_recording(ARCHIVE, "vmtrace-fuzz-")
        recording = cls.tmp / "recording"
        host_trace = next((recording / "l1" / "trace").glob("**/metadata")).parent
        cls.host = cls.tmp / "host"
        cls.host.mkdir()
        shutil.copy(host_trace / "metadata", cls.host / "metadata")
        with open(host_trace / "ch_0", "rb") as src, open(cls.host / "ch_0", "wb") as dst:
            src.seek(HOST_PACKET * PACKET_BYTES)
            dst.write(src.read(PACKET_BYTES))
        cls.guest = next((recording / "l2a" / "trace").glob("**/metadata")).parent
        proc = run("sync", cls.host, cls.guest, "-o", cls.tmp / "clean-sync", "--stats", cls.tmp / "clean.json", "-q")
        assert proc.returncode == 0, proc.stderr
        cls.clean_sync = sync_summary(cls.tmp / "clean.json")
        assert [m[5] for m in cls.clean_sync if m[1] == "guest"] == ["synchronized"], cls.clean_sync
        proc = run("analyze", cls.host, cls.guest, "-o", cls.tmp / "clean-analysis", "-q")
        assert proc.returncode == 0, proc.stderr
        cls.clean_analysis = analysis_summary(cls.tmp / "clean-analysis")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def damaged_copy(self, case, trace, name, offset):
        """`trace` with the byte at `offset` of `name` inverted; the other files hard-linked."""
        copy = self.tmp / f"case{case}" / trace.name
        for path in trace.rglob("*"):
            target = copy / path.relative_to(trace)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif path.relative_to(trace).as_posix() != name:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
        data = bytearray((trace / name).read_bytes())
        data[offset] ^= 0xFF
        (copy / name).write_bytes(bytes(data))
        return copy

    def test_flipped_bytes(self):
        files = [(self.host, "metadata"), (self.host, "ch_0"), (self.guest, "metadata"), (self.guest, "ch_0"),
                 (self.guest, "ch_1")]
        case = 0
        outcomes = {}
        for trace, name in files:
            for offset in offsets((trace / name).stat().st_size):
                case += 1
                command = "sync" if case % 2 else "analyze"
                with self.subTest(file=f"{trace.name}/{name}", offset=offset, command=command):
                    damaged = self.damaged_copy(case, trace, name, offset)
                    host = damaged if trace == self.host else self.host
                    guest = damaged if trace == self.guest else self.guest
                    out = self.tmp / f"case{case}" / "out"
                    try:
                        if command == "sync":
                            proc = run("sync", host, guest, "-o", out, "--stats", out.parent / "stats.json", "-q")
                        else:
                            proc = run("analyze", host, guest, "-o", out, "-q")
                    except subprocess.TimeoutExpired:
                        self.fail(f"no result after {TIMEOUT_S} s (a hang)")
                    self.assertGreaterEqual(proc.returncode, 0, f"killed by signal {-proc.returncode}")
                    self.assertIn(proc.returncode, (0, 1, 2), proc.stderr)
                    outcomes[proc.returncode] = outcomes.get(proc.returncode, 0) + 1
                    if proc.returncode != 0:
                        self.assertTrue(proc.stderr.startswith(f"vmtrace"), proc.stderr)
                        self.assertNotIn("addr=0x", proc.stderr)
                        if command == "sync":
                            self.assertFalse(out.exists(), "a failed sync left its output")
                    elif command == "sync":
                        self.assertEqual(sync_summary(out.parent / "stats.json"), self.clean_sync, proc.stderr)
                    else:
                        self.assertEqual(analysis_summary(out), self.clean_analysis, proc.stderr)
                shutil.rmtree(self.tmp / f"case{case}", ignore_errors=True)
        print(f"{case} runs, exit statuses: {outcomes}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
