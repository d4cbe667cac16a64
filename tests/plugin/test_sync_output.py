#!/usr/bin/env python3
"""What filter.vmtrace.sync writes: one time-ordered output in which the
host is untouched and each synchronised guest keeps its identity (trace
environment, clock name and UUID) with its clock counting host time, so
that Trace Compass can import the traces without synchronising again."""
import re
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, babeltrace, params, simulate, synchronize  # noqa: E402


def clock_block(trace):
    meta = babeltrace(["--output-format=ctf-metadata", trace]).stdout
    block = re.search(r"^clock \{(.*?)^\};", meta, re.S | re.M).group(1)
    return dict(re.findall(r"^\s*(\w+)\s*=\s*\"?([^\";]*)\"?;", block, re.M)), meta


class SyncOutputTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls._shared = tempfile.TemporaryDirectory(prefix="vmtrace-out-")
        cls.out = Path(cls._shared.name)
        cls.rec = simulate(cls.out, seed=21, duration_ms=3_000)
        cls.proc, cls.stats = synchronize([cls.rec.host] + cls.rec.guests, cls.out)
        cls.synced = {p.parts[-3]: str(p) for p in (cls.out / "synchronized").glob("*/*/kernel")}

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def test_host_trace_passes_through_unchanged(self):
        self.assertEqual(babeltrace([self.synced["vmtrace-sim-host"]]).stdout, babeltrace([self.rec.host]).stdout)

    def test_guests_keep_their_identity_on_the_host_clock(self):
        host_clock, _ = clock_block(self.rec.host)
        self.assertEqual(len(self.rec.guests), 2)  # the loop checks each guest
        for index, recorded in enumerate(self.rec.guests):
            name = f"vmtrace-sim-guest{index}"
            with self.subTest(guest=name):
                before, meta_before = clock_block(recorded)
                after, meta_after = clock_block(self.synced[name])
                self.assertEqual(after["uuid"], before["uuid"])  # Trace Compass's machine identity
                self.assertEqual(after["name"], before["name"])
                self.assertEqual((after["offset_s"], after["offset"]), (host_clock["offset_s"], host_clock["offset"]))
                self.assertNotEqual(before["offset_s"], host_clock["offset_s"])
                for entry in ("domain = \"kernel\"", "tracer_name = \"lttng-modules\"", f"hostname = \"{name}\""):
                    self.assertIn(entry, meta_after)
                self.assertIn('vmtrace_time_base = "host vmtrace-sim-host"', meta_after)
                # same events, same fields, only the times moved
                strip = re.compile(r"^\[[^\]]*\] \([^)]*\) ")
                lines_before = [strip.sub("", line) for line in babeltrace([recorded]).stdout.splitlines()]
                lines_after = [strip.sub("", line) for line in babeltrace([self.synced[name]]).stdout.splitlines()]
                self.assertEqual(sorted(lines_before), sorted(lines_after))
                checker = SOURCE_DIR / "tests" / "schema" / "check_trace_schema.py"
                proc = subprocess.run([sys.executable, str(checker), self.synced[name], "--emitter", "scenario"],
                                      capture_output=True, text=True, check=False)
                self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_output_is_in_time_order(self):
        args = ["run"]
        traces = [self.rec.host] + self.rec.guests
        for i, trace in enumerate(traces):
            args += ["-c", f"in{i}:src.ctf.fs", "-p", params(inputs=[trace])]
        args += ["-c", "sync:filter.vmtrace.sync", "-p", params(quiet=True),
                 "-c", "text:sink.text.pretty", "-p", params(clock_seconds=True, no_delta=True)]
        args += [a for i in range(len(traces)) for a in ("--connect", f"in{i}:sync")] + ["--connect", "sync:text"]
        out = babeltrace(args).stdout.splitlines()
        times = [int(line[1:line.index("]")].replace(".", "")) for line in out]
        self.assertEqual(len(times), sum(m["events_out"] for m in self.stats["machines"]))
        self.assertTrue(all(a <= b for a, b in zip(times, times[1:])), "output not in time order")
        self.assertEqual({line.split()[1] for line in out},
                         {"vmtrace-sim-host", "vmtrace-sim-guest0", "vmtrace-sim-guest1"})

    def test_statistics_account_for_every_message(self):
        self.assertEqual(self.proc.returncode, 0)
        self.assertEqual(sorted(m["role"] for m in self.stats["machines"]), ["guest", "guest", "host"])
        for m in self.stats["machines"]:
            self.assertEqual(m["events_in"], m["events_out"])
            self.assertEqual(m["messages_in"], m["messages_out"])
        self.assertEqual(self.stats["errors"], [])
        for m in self.stats["machines"]:
            if m["role"] == "guest":
                self.assertGreater(m["hull_sizes"]["guest_to_host"], 2)
                self.assertEqual(m["method"], "convex-hull")
                self.assertGreaterEqual(m["accuracy_ns"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
