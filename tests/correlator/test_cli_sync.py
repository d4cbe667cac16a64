#!/usr/bin/env python3
"""`vmtrace sync`: the command a user types, its outputs and exit codes."""
import json
import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import TempDirTestCase, simulate  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))


def vmtrace(*args, env=None):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=600,
                          env=env)


class CliSyncTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls._shared = tempfile.TemporaryDirectory(prefix="vmtrace-cli-")
        cls.rec = simulate(Path(cls._shared.name), seed=31, duration_ms=1_500)
        cls.root = Path(cls._shared.name) / "recorded"

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def test_sync_writes_traces_and_statistics(self):
        out = self.tmp / "out"
        # machine directories as LTTng lays them out (HOST/SESSION/kernel)
        proc = vmtrace("sync", self.root / "vmtrace-sim-host", self.root / "vmtrace-sim-guest0",
                       self.root / "vmtrace-sim-guest1", "-o", out, "--stats", self.tmp / "stats.json")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("vmtrace sync summary", proc.stderr)
        self.assertEqual(sorted(p.name for p in out.iterdir()),
                         ["vmtrace-sim-guest0", "vmtrace-sim-guest1", "vmtrace-sim-host", "vmtrace-sync.json"])
        stats = json.loads((self.tmp / "stats.json").read_text(encoding="utf-8"))
        self.assertEqual({m["quality"] for m in stats["machines"] if m["role"] == "guest"}, {"accurate"})

    def test_quiet_prints_nothing_on_success(self):
        proc = vmtrace("sync", self.rec.host, self.rec.guest(0), "-o", self.tmp / "q", "--quiet")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")

    def test_usage_errors_exit_2_with_one_line(self):
        cases = [(["frobnicate"], "unknown command `frobnicate`"),
                 (["sync", self.rec.host], "needs a host trace and at least one guest trace"),
                 (["sync", self.rec.host, self.rec.guest(0)], "needs an output directory"),
                 (["sync", self.rec.host, self.tmp / "missing", "-o", self.tmp / "o"], "not a directory"),
                 (["sync", self.rec.host, self.tmp, "-o", self.tmp / "o"], "no CTF trace in it"),
                 (["sync", self.rec.host, self.rec.guest(0), "-o", self.tmp / "o", "--windw-ms", "5"],
                  "unrecognised option")]
        for args, message in cases:
            with self.subTest(args=args):
                proc = vmtrace(*args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, proc.stderr)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)

    def test_untrusted_output_exits_1_naming_the_problem(self):
        proc = vmtrace("sync", self.rec.guest(0), self.rec.guest(1), "-o", self.tmp / "o", "--quiet")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no input trace is a KVM host", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)

    def test_missing_plugin_exits_3(self):
        env = dict(os.environ, VMTRACE_PLUGIN_DIR=str(self.tmp / "nowhere"))
        proc = vmtrace("sync", self.rec.host, self.rec.guest(0), "-o", self.tmp / "o", env=env)
        self.assertEqual(proc.returncode, 3)
        self.assertIn("cannot find the babeltrace2 plugin `vmtrace`", proc.stderr)

    def test_help(self):
        for args in (["--help"], ["sync", "--help"]):
            proc = vmtrace(*args)
            self.assertEqual(proc.returncode, 0)
            self.assertIn("sync", proc.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
