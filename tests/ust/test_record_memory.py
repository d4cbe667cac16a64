#!/usr/bin/env python3
"""`vmtrace record memory`: the lttng commands it prints (the schema's
vmtrace_mem events, a user-space channel sized for the memory tracer), its
usage errors, and the real liblttng-ctl path against a private session
daemon: the session it sets up records what libvmtrace-mem emits, every
record of a fast burst kept.  The session tests are skipped (with the
reason) only when lttng-sessiond cannot run here."""
import json
import os
import re
import shlex
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_mem_provider import (AS_USER, COMMAND, VMTRACE, feed, feed_text, known_sequence,  # noqa: E402
                               private_home, read_trace, sessiond_cannot_run, start_daemon, trace_dir)
from vmtrace_test import SOURCE_DIR, TempDirTestCase  # noqa: E402


def vmtrace(*args, env=None, as_user=False):
    cmd = (AS_USER if as_user else []) + [VMTRACE, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)


def one_line(test, proc):
    lines = proc.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, proc.stderr)
    return lines[0]


def schema_memory_events():
    with open(SOURCE_DIR / "docs" / "events.json", encoding="utf-8") as f:
        schema = json.load(f)
    return [f"{e['provider']}:{e['name']}" for e in schema["events"] if e["provider"] == "vmtrace_mem"]


class RecordMemoryDryRunTest(TempDirTestCase):
    def dry_run(self, *args):
        proc = vmtrace("record", "memory", "--dry-run", *args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        return proc.stdout.splitlines()

    def test_dry_run_prints_a_user_space_session_with_the_schemas_events(self):
        lines = self.dry_run()
        self.assertEqual(lines[0], "lttng create vmtrace-memory")
        self.assertEqual(lines[1], "lttng enable-channel --userspace --session=vmtrace-memory --buffers-uid "
                                   "--subbuf-size=4M --num-subbuf=8 vmtrace")
        prefix = "lttng enable-event --userspace --session=vmtrace-memory --channel=vmtrace "
        self.assertTrue(lines[2].startswith(prefix), lines[2])
        enabled = shlex.split(lines[2])[-1].split(",")
        self.assertEqual(enabled, schema_memory_events())
        self.assertEqual(set(enabled), {f"vmtrace_mem:{e}" for e in COMMAND})
        self.assertEqual(len(lines), 3, lines)  # no context, not started

    def test_dry_run_options(self):
        out = self.tmp / "mem traces"
        lines = self.dry_run("-o", out, "--session", "qemu", "--buffers", "pid", "--subbuf-size", "8M",
                             "--num-subbuf", "4", "--context", "vpid", "--context", "vtid", "--start")
        self.assertEqual(shlex.split(lines[0]), ["lttng", "create", "qemu", f"--output={out}"])
        self.assertEqual(lines[1], "lttng enable-channel --userspace --session=qemu --buffers-pid --subbuf-size=8M "
                                   "--num-subbuf=4 vmtrace")
        self.assertEqual(lines[3], "lttng add-context --userspace --session=qemu --channel=vmtrace --type=vpid "
                                   "--type=vtid")
        self.assertEqual(lines[4], "lttng start qemu")
        lines = self.dry_run("--blocking-timeout-us", "inf")
        self.assertEqual(lines[1], "lttng enable-channel --userspace --session=vmtrace-memory --buffers-uid "
                                   "--blocking-timeout=inf --subbuf-size=4M --num-subbuf=8 vmtrace")
        self.assertIn("--blocking-timeout=2147483647 ", self.dry_run("--blocking-timeout-us", "2147483647")[1])

    def test_bad_usage_exits_2_with_one_line(self):
        cases = [(["record", "memory", "--buffers", "global"], "--buffers global: uid or pid"),
                 (["record", "host", "--buffers", "pid"], "--buffers is for `record memory`"),
                 (["record", "memory", "--context", "tid"], "unknown user-space context `tid`"),
                 (["record", "memory", "host"], "the side is host, guest or memory, once"),
                 (["record", "memory", "--subbuf-size", "3M"], "must be a power of two"),
                 (["record", "host", "--blocking-timeout-us", "10"], "--blocking-timeout-us is for `record memory`"),
                 (["record", "memory", "--blocking-timeout-us", "-1"], "--blocking-timeout-us -1: 0..2147483647 or inf"),
                 (["record", "memory", "--blocking-timeout-us", "2147483648"], "0..2147483647 or inf"),
                 (["record", "memory", "--blocking-timeout-us", "10ms"], "--blocking-timeout-us 10ms: 0..")]
        for args, message in cases:
            with self.subTest(args=args):
                proc = vmtrace(*args, "--dry-run")
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, one_line(self, proc))
                self.assertEqual(proc.stdout, "")

    def test_help_names_the_memory_side(self):
        proc = vmtrace("record", "--help")
        self.assertEqual(proc.returncode, 0)
        for text in ("host|guest|memory", "--buffers", "libvmtrace-mem"):
            self.assertIn(text, proc.stdout)


class RecordMemoryNoDaemonTest(TempDirTestCase):
    def test_without_a_session_daemon_exits_4_with_one_line(self):
        env = dict(os.environ, LTTNG_HOME=str(private_home(self.tmp, "nodaemon")))
        proc = vmtrace("record", "memory", "--start", env=env, as_user=True)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertEqual(one_line(self, proc),
                         "vmtrace record: session vmtrace-memory: cannot be created: no lttng-sessiond is running "
                         "for this user: start one (`lttng-sessiond --daemonize`; user-space tracing needs no root)")


class RecordMemorySessionTest(TempDirTestCase):
    cannot_run = None  # why no lttng-sessiond can run here, set by main

    def setUp(self):
        if self.cannot_run is not None:
            self.skipTest(self.cannot_run)
        super().setUp()

    def test_the_session_records_every_event_of_a_burst(self):
        daemon = start_daemon(self.tmp)
        try:
            out = private_home(self.tmp, "trace")
            proc = vmtrace("record", "memory", "-o", out, "--start", env=daemon.env, as_user=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(proc.stderr, "")
            self.assertIn("session vmtrace-memory: user-space channel vmtrace (8 x 4M per CPU, per user), 5 events",
                          proc.stdout)
            listing = daemon.lttng("list", "vmtrace-memory").stdout
            self.assertIn("Recording session vmtrace-memory: [active]", listing)
            self.assertIn("Buffering scheme: per-user", listing)
            self.assertRegex(listing, r"Sub-buffer size: +4194304 bytes\s+Sub-buffer count: +8\n")
            self.assertRegex(listing, r"Event-loss mode: +discard")
            for event in schema_memory_events():
                self.assertIn(event, listing)
            # A second one of the same name is refused, and leaves the first alone.
            again = vmtrace("record", "memory", "-o", out, env=daemon.env, as_user=True)
            self.assertEqual(again.returncode, 4)
            self.assertIn("a session of that name exists", one_line(self, again))
            # 200 000 accesses fed as fast as the feeder reads them.
            sequence = known_sequence(accesses=200_000, seed=3)
            fed = feed(feed_text(sequence), daemon.env)
            self.assertEqual(fed.returncode, 0, fed.stderr)
            daemon.lttng("stop", "vmtrace-memory")
            daemon.lttng("destroy", "vmtrace-memory")
        finally:
            daemon.stop()
        events, _, stderr = read_trace(trace_dir(out))
        self.assertNotIn("discarded", stderr)
        self.assertEqual([(name, tuple(fields.values())) for name, fields in events],
                         [(f"vmtrace_mem:{name}", values) for name, values in sequence])

    def burst_through_a_tiny_buffer(self, name, accesses, *options, env=None):
        """`accesses` through 2 x 4 KiB: (records fed, records read, babeltrace2's output)."""
        tmp = private_home(self.tmp, name)
        daemon = start_daemon(tmp)
        try:
            out = private_home(tmp, "tiny")
            proc = vmtrace("record", "memory", "-o", out, "--start", "--subbuf-size", "4k", "--num-subbuf", "2",
                           *options, env=daemon.env, as_user=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            sequence = known_sequence(accesses=accesses, seed=5)
            fed = feed(feed_text(sequence), dict(daemon.env, **(env or {})))
            self.assertEqual(fed.returncode, 0, fed.stderr)
            daemon.lttng("stop", "vmtrace-memory")
            daemon.lttng("destroy", "vmtrace-memory")
        finally:
            daemon.stop()
        proc = subprocess.run(["babeltrace2", str(trace_dir(out))], capture_output=True, text=True, check=True)
        kept = sum(1 for line in proc.stdout.splitlines() if " vmtrace_mem:" in line)
        return len(sequence), kept, proc.stdout + proc.stderr

    def test_a_full_buffer_drops_and_counts_or_blocks_and_keeps_everything(self):
        fed, kept, output = self.burst_through_a_tiny_buffer("discard", 100_000)
        self.assertLess(kept, fed)
        discarded = sum(int(n) for n in re.findall(r"discarded (\d+) events", output))
        # LTTng's counts of discarded events, as babeltrace2 reports them,
        # fall short by a handful now and then: 2 and 3 of about 100 000 in
        # 2 of 9 runs (one under ASan), even with one more record written on
        # the same CPU after the burst, so that a packet closes after every
        # discard.  Never more than fed, never more than 10 short.
        self.assertLessEqual(kept + discarded, fed)
        self.assertLessEqual(fed - (kept + discarded), 10, "records dropped and not counted")
        # Blocking: the tracer waits for the consumer daemon, nothing is lost
        # (slowly: ~2 k records/s through this buffer, hence fewer).
        fed, kept, output = self.burst_through_a_tiny_buffer("blocking", 5_000, "--blocking-timeout-us", "inf",
                                                             env={"LTTNG_UST_ALLOW_BLOCKING": "1"})
        self.assertEqual(kept, fed)
        self.assertNotIn("discarded", output)


if __name__ == "__main__":
    # The dry runs need no daemon: only the session tests are skipped.
    RecordMemorySessionTest.cannot_run = sessiond_cannot_run()
    unittest.main(verbosity=2)
