#!/usr/bin/env python3
"""`vmtrace` on a bad day: damaged and truncated traces, a full or read-only
output file system, outputs that overlap the inputs, traces that were not
synchronised, out-of-range options.  Each case must end with a clear first
line naming the file, the documented exit status, no signal, no hang, and no
output that passes for complete."""
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, simulate  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))
ARCHIVE = SOURCE_DIR / "examples" / "lab-recording" / "recording.tar.xz"
IS_ROOT = os.geteuid() == 0


def vmtrace(*args, timeout=120):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=timeout)


def trace_of(machine_dir):
    return next(Path(machine_dir).glob("**/metadata")).parent


class BadInputTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="vmtrace-bad-")
        shared = Path(cls._shared.name)
        cls.rec = simulate(shared / "sim", seed=37, duration_ms=1_000)
        with tarfile.open(ARCHIVE) as archive:
            archive.extractall(shared)
        cls.lab = shared / "recording"
        cls.lab_host = trace_of(cls.lab / "l1" / "trace")
        cls.lab_guest = trace_of(cls.lab / "l2a" / "trace")

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def setUp(self):
        super().setUp()
        self.mounts = []

    def tearDown(self):
        for mount in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mount)], check=False)
        super().tearDown()

    def mount_tmpfs(self, name, options):
        where = self.tmp / name
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        self.mounts.append(where)
        return where

    def guest_copy(self):
        copy = self.tmp / "guest"
        shutil.copytree(self.lab_guest, copy)
        return copy

    def assert_fails(self, proc, status, *texts):
        """Exit `status` (no signal), a first line naming what went wrong, no internal names."""
        self.assertGreaterEqual(proc.returncode, 0, f"killed by signal {-proc.returncode}: {proc.stderr}")
        self.assertEqual(proc.returncode, status, proc.stderr)
        first = proc.stderr.splitlines()[0] if proc.stderr else ""
        self.assertTrue(first.startswith("vmtrace"), proc.stderr)
        for text in texts:
            self.assertIn(str(text), first)
        for internal in ("trace0", "trace1", "trace2", "addr=0x", "comp-name"):
            self.assertNotIn(internal, proc.stderr)
        return first

    def assert_no_leftovers(self, parent):
        self.assertEqual([p.name for p in Path(parent).iterdir() if "vmtrace-staging" in p.name], [])

    # Crashes: babeltrace2's sink.ctf.fs crashes when its failed graph is torn down.

    def test_damaged_event_mid_trace_fails_with_its_trace_and_writes_nothing(self):
        guest = self.guest_copy()
        with open(guest / "ch_0", "r+b") as f:
            f.seek(20000)
            f.write(b"\xff")
        out = self.tmp / "out"
        for command in (["sync"], ["export", "--trace-compass"]):
            with self.subTest(command=command[0]):
                proc = vmtrace(*command, self.lab_host, guest, "-o", out, "-q")
                self.assert_fails(proc, 1, guest)
                self.assertFalse(out.exists())
                self.assert_no_leftovers(self.tmp)

    def test_failed_analysis_writes_nothing_and_keeps_the_earlier_results(self):
        out = self.tmp / "analysis"
        proc = vmtrace("analyze", self.rec.host, self.rec.guest(0), "-o", out, "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        earlier = {f.name: f.read_bytes() for f in out.iterdir()}
        self.assertIn("analysis.json", earlier)
        guest = self.guest_copy()
        with open(guest / "ch_0", "r+b") as f:
            f.seek(20000)
            f.write(b"\xff")
        proc = vmtrace("analyze", "--intervals", self.lab_host, guest, "-o", out, "-q")
        self.assert_fails(proc, 1, guest)
        # no half-written file of the failed run (its CSV files are streamed), no staging directory
        self.assertTrue({f.name: f.read_bytes() for f in out.iterdir()} == earlier,
                        "the failed run changed the output directory")
        (out / "summary.txt").unlink()
        (out / "summary.txt").mkdir()
        proc = vmtrace("analyze", self.rec.host, "-o", out, "-q")
        self.assert_fails(proc, 2, out / "summary.txt", "not a regular file")

    @unittest.skipUnless(IS_ROOT, "mounting a tmpfs needs root")
    def test_full_file_system_fails_with_a_message(self):
        small = self.mount_tmpfs("small", "size=64k")
        for command in (["sync"], ["export", "--trace-compass"]):
            with self.subTest(command=command[0]):
                out = small / "out"
                proc = vmtrace(*command, self.rec.host, self.rec.guest(0), "-o", out, "-q")
                self.assert_fails(proc, 1, out, "no space left")
                self.assertFalse(out.exists())
                self.assert_no_leftovers(small)
        proc = vmtrace("analyze", self.rec.host, self.rec.guest(0), "-o", small / "analysis", "-q", "--intervals")
        self.assert_fails(proc, 1, small / "analysis", "no space left")

    @unittest.skipUnless(IS_ROOT, "mounting a tmpfs needs root")
    def test_read_only_output_exits_4(self):
        ro = self.mount_tmpfs("ro", "ro,size=64k")
        for command in (["sync"], ["export", "--trace-compass"], ["analyze"]):
            with self.subTest(command=command[0]):
                proc = vmtrace(*command, self.rec.host, self.rec.guest(0), "-o", ro / "out", "-q")
                self.assert_fails(proc, 4, ro, "Read-only file system")
        (self.tmp / "a").mkdir()
        proc = vmtrace("analyze", self.rec.host, "-o", self.tmp / "a", "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = vmtrace("report", self.tmp / "a", "-o", ro / "report.html")
        self.assert_fails(proc, 4, ro / "report.html", "Read-only file system")

    # Hangs.

    def test_truncated_packetized_metadata_is_refused_before_reading(self):
        guest = self.guest_copy()
        metadata = guest / "metadata"
        self.assertEqual(metadata.read_bytes()[:4], b"\x57\x1d\xd1\x75")  # packetized, little-endian
        for size in (5000, 4096 + 20, 8192 + 100):
            with self.subTest(size=size):
                shutil.copy(self.lab_guest / "metadata", metadata)
                os.truncate(metadata, size)
                proc = vmtrace("sync", self.lab_host, guest, "-o", self.tmp / "out", "-q", timeout=60)
                self.assert_fails(proc, 1, metadata, "damaged metadata packet")
        shutil.copy(self.lab_guest / "metadata", metadata)
        with open(metadata, "r+b") as f:  # a damaged packet size
            f.seek(4096 + 28)
            f.write(b"\xff\xff\xff\x7f")
        proc = vmtrace("analyze", self.lab_host, guest, "-o", self.tmp / "a", "-q", timeout=60)
        self.assert_fails(proc, 1, metadata, "damaged metadata packet at byte 4096")
        shutil.copy(self.lab_guest / "metadata", metadata)
        with open(metadata, "r+b") as f:  # the magic: src.ctf.fs would only say it cannot create the trace
            f.write(b"\xa8")
        proc = vmtrace("sync", self.lab_host, guest, "-o", self.tmp / "out", "-q", timeout=60)
        self.assert_fails(proc, 1, metadata, "not CTF metadata")

    def test_fifo_is_refused(self):
        guest = self.guest_copy()
        os.mkfifo(guest / "ch_9")
        proc = vmtrace("sync", self.lab_host, guest, "-o", self.tmp / "out", "-q", timeout=60)
        self.assert_fails(proc, 1, guest / "ch_9", "not a regular file")
        os.mkfifo(self.tmp / "analysis.json")
        proc = vmtrace("report", self.tmp / "analysis.json", "-o", self.tmp / "r.html", timeout=60)
        self.assert_fails(proc, 2, self.tmp / "analysis.json", "not a directory nor a regular file")
        (self.tmp / "dir").mkdir()
        os.mkfifo(self.tmp / "dir" / "analysis.json")
        proc = vmtrace("report", self.tmp / "dir", timeout=60)
        self.assert_fails(proc, 1, self.tmp / "dir" / "analysis.json", "not a regular file")

    # Lost results.

    def test_trace_without_stream_files_is_refused(self):
        guest = self.guest_copy()
        for stream in guest.glob("ch_*"):
            stream.unlink()
        for command in (["sync"], ["export", "--trace-compass"], ["analyze"]):
            with self.subTest(command=command[0]):
                out = self.tmp / f"out-{command[0]}"
                proc = vmtrace(*command, self.lab_host, guest, "-o", out, "-q")
                self.assert_fails(proc, 1, guest, "no stream file")
                self.assertFalse(out.exists())

    def test_analyze_synchronized_reads_only_complete_sync_output(self):
        proc = vmtrace("analyze", "--synchronized", self.rec.host, self.rec.guest(0), "-o", self.tmp / "a", "-q")
        self.assert_fails(proc, 1, self.rec.host, "not synchronised by `vmtrace sync`")
        synced = self.tmp / "synced"
        proc = vmtrace("sync", self.rec.host, self.rec.guest(0), "-o", synced, "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue((synced / "vmtrace-sync.json").is_file())
        proc = vmtrace("analyze", "--synchronized", synced, "-o", self.tmp / "a", "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        # A trace cut short after the sync: refused.
        stream = next(p for p in (synced / "vmtrace-sim-guest0").glob("**/*") if p.is_file()
                      and p.name != "metadata" and p.stat().st_size > 0)
        # The fast path hard-links the recorded stream files: the cut copy
        # replaces the link, as it would the recorded file itself.
        data = stream.read_bytes()
        stream.unlink()
        stream.write_bytes(data[:len(data) // 2])
        proc = vmtrace("analyze", "--synchronized", synced, "-o", self.tmp / "a", "-q")
        self.assert_fails(proc, 1, "files changed since `vmtrace sync` wrote them")
        # A trace copied in beside the synchronised ones: not listed, refused.
        shutil.copytree(self.rec.guest(1), synced / "extra")
        proc = vmtrace("analyze", "--synchronized", synced / "extra", "-o", self.tmp / "b", "-q")
        self.assert_fails(proc, 1, synced / "extra", "does not list it")

    # Destructive output handling.

    def test_output_overlapping_an_input_is_refused_and_the_input_kept(self):
        host_files = {p: p.read_bytes() for p in Path(self.rec.host).iterdir() if p.is_file()}
        machine = Path(self.rec.host).parents[1]
        for command in (["sync"], ["export", "--trace-compass"], ["analyze"]):
            for out, what in ((self.rec.host, "is the input"), (machine, "contains the input"),
                              (Path(self.rec.host) / "x", "inside the input")):
                with self.subTest(command=command[0], out=out):
                    proc = vmtrace(*command, self.rec.host, self.rec.guest(0), "-o", out, "-q")
                    self.assert_fails(proc, 2, what)
        self.assertEqual({p: p.read_bytes() for p in Path(self.rec.host).iterdir() if p.is_file()}, host_files)
        self.assertFalse((Path(self.rec.host) / "x").exists())

    def test_sync_output_is_new_or_replaced_whole(self):
        out = self.tmp / "out"
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
        proc = vmtrace("sync", self.rec.host, self.rec.guest(0), "-o", out, "-q")
        self.assert_fails(proc, 2, out, "not empty")
        proc = vmtrace("sync", self.rec.host, self.rec.guest(0), "-o", out, "-q", "--force")
        self.assert_fails(proc, 2, out, "not an earlier output")
        self.assertEqual([p.name for p in out.iterdir()], ["notes.txt"])
        (out / "notes.txt").unlink()
        proc = vmtrace("sync", self.rec.host, self.rec.guest(0), self.rec.guest(1), "-o", out, "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("vmtrace-sim-guest1", [p.name for p in out.iterdir()])
        # --force replaces it whole: the guest of the first run does not stay behind.
        proc = vmtrace("sync", self.rec.host, self.rec.guest(0), "-o", out, "-q", "--force")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(p.name for p in out.iterdir()),
                         ["vmtrace-sim-guest0", "vmtrace-sim-host", "vmtrace-sync.json"])
        self.assert_no_leftovers(self.tmp)

    def test_stats_file_is_checked_before_the_run(self):
        (self.tmp / "stats").mkdir()
        for command in (["sync"], ["export", "--trace-compass"]):
            for stats, status, text in ((self.tmp / "stats", 2, "is a directory"),
                                        (self.tmp / "missing" / "s.json", 2, "no such directory")):
                with self.subTest(command=command[0], stats=stats):
                    out = self.tmp / "out"
                    proc = vmtrace(*command, self.rec.host, self.rec.guest(0), "-o", out, "--stats", stats, "-q")
                    self.assert_fails(proc, status, text)
                    self.assertFalse(out.exists())

    def test_report_replaces_only_a_regular_file_that_is_not_its_input(self):
        analysis = self.tmp / "a"
        proc = vmtrace("analyze", self.rec.host, "-o", analysis, "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        before = (analysis / "analysis.json").read_bytes()
        for out, text in ((analysis / "analysis.json", "is the input"), (analysis, "not a regular file"),
                          ("/dev/null", "not a regular file")):
            with self.subTest(out=out):
                proc = vmtrace("report", analysis, "-o", out)
                self.assert_fails(proc, 2, out, text)
        self.assertEqual((analysis / "analysis.json").read_bytes(), before)
        self.assertTrue(Path("/dev/null").is_char_device())

    # Exit statuses and messages.

    def test_out_of_range_options_exit_2_naming_the_option(self):
        cases = [(["sync", "--window-ms", "-1"], "--window-ms -1"),
                 (["sync", "--prefetch-ms", "0"], "--prefetch-ms 0"),
                 (["export", "--trace-compass", "--prefetch-ms", "4000000"], "--prefetch-ms 4000000"),
                 (["analyze", "--timeline-bins", "3"], "--timeline-bins 3"),
                 (["analyze", "--timeline-bins", "0"], "--timeline-bins 0"),
                 (["analyze", "--window-ms", "99999999999999999999"], "window-ms")]
        for args, text in cases:
            with self.subTest(args=args):
                proc = vmtrace(*args, self.rec.host, self.rec.guest(0), "-o", self.tmp / "o", "-q")
                self.assert_fails(proc, 2, text)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)

    def test_unreadable_input_exits_4(self):
        if not IS_ROOT or not shutil.which("setpriv"):
            self.skipTest("needs root to run as another user")
        private = self.tmp / "private"
        shutil.copytree(self.rec.host, private)
        private.chmod(0o700)
        self.tmp.chmod(0o755)
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", VMTRACE, "analyze",
                               str(private), "-o", "/tmp/vmtrace-never-written", "-q"],
                              capture_output=True, text=True, check=False, timeout=60,
                              env=dict(os.environ))
        self.assert_fails(proc, 4, private, "Permission denied")


if __name__ == "__main__":
    unittest.main(verbosity=2)
