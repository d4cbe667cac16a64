#!/usr/bin/env python3
"""libvmtrace-mem under a real lttng-ust session: a private lttng-sessiond
(run as nobody when root, LTTNG_HOME in a temporary directory, user space
only), tests/ust/mem_tracer_feed.c calling every function of the provider
with values the test chooses, and the trace read back with babeltrace2:
every event and field value out exactly as fed, in order, nothing lost; the
metadata as docs/events.json says for emitter ust-provider; the trace
recognised by filter.vmtrace.sync as a memory tracer's.  Also `vmtrace record
memory` setting up that session itself.

Exits 77 (skipped) only when lttng-sessiond cannot run here."""
import os
import random
import re
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from lttng_daemon import AS_USER, HIDE_ROOT_SESSIOND, IS_ROOT, SessionDaemon  # noqa: E402
from vmtrace_test import SOURCE_DIR, TempDirTestCase, simulate, synchronize  # noqa: E402

FEED = os.environ.get("VMTRACE_MEM_FEED", str(SOURCE_DIR / "build" / "tests" / "vmtrace_mem_tracer_feed"))
VMTRACE = os.environ.get("VMTRACE_BIN", str(SOURCE_DIR / "build" / "vmtrace"))
# The traced process: as the private daemon's user, apart from a root daemon (lttng_daemon.HIDE_ROOT_SESSIOND).
TRACED = HIDE_ROOT_SESSIOND + AS_USER
# The schema's events of the provider, in docs/events.json's order.
EVENTS = ["vmtrace_mem_access", "vmtrace_mem_lost", "vmtrace_mem_sync", "vmtrace_mem_window_open",
          "vmtrace_mem_window_close"]
FIELDS = {"vmtrace_mem_access": ["cpu", "hpa", "size", "kind", "va"], "vmtrace_mem_lost": ["count"],
          "vmtrace_mem_sync": ["cnt", "hpa", "cpu"], "vmtrace_mem_window_open": ["window"],
          "vmtrace_mem_window_close": ["window", "recorded", "lost"]}
COMMAND = {"vmtrace_mem_access": "access", "vmtrace_mem_lost": "lost", "vmtrace_mem_sync": "sync",
           "vmtrace_mem_window_open": "open", "vmtrace_mem_window_close": "close"}
U32, U64 = 2**32 - 1, 2**64 - 1
BASE = 0x7FF00000  # the lab's reserved page
LINE = re.compile(r"^\[(\d+)\] \S+ (\S+): \{ cpu_id = \d+ \}, \{ (.*) \}$")


def known_sequence(accesses=20_000, seed=10):
    """[(event, (values...))]: two windows, random accesses with every edge value, marks and losses."""
    rng = random.Random(seed)
    seq = [("vmtrace_mem_window_open", (0,))]
    edges = [(0, 0, 1, 0, 0), (U32, U64, 255, 2, U64), (3, 0x8000000000000000, 8, 1, 0x7FFFFFFFF000)]
    seq += [("vmtrace_mem_access", e) for e in edges]
    for i in range(accesses):
        seq.append(("vmtrace_mem_access", (rng.randrange(8), rng.randrange(1 << 40), rng.choice((1, 2, 4, 8, 16)),
                                           rng.randrange(3), rng.randrange(1 << 47))))
        if i % 2000 == 0:
            seq.append(("vmtrace_mem_sync", (i // 2000, BASE, rng.randrange(8))))
    seq += [("vmtrace_mem_lost", (0,)), ("vmtrace_mem_lost", (12345,)), ("vmtrace_mem_lost", (U64,))]
    seq.append(("vmtrace_mem_window_close", (0, accesses + len(edges), 12345)))
    seq += [("vmtrace_mem_sync", (U32, U64, U32)), ("vmtrace_mem_window_open", (U32,)),
            ("vmtrace_mem_window_close", (U32, U64, U64))]
    return seq


def feed_text(seq):
    return "".join(f"{COMMAND[name]} {' '.join(str(v) for v in values)}\n" for name, values in seq)


def feed(text, env):
    return subprocess.run(TRACED + [FEED], input=text, env=env, capture_output=True, text=True, check=False,
                          timeout=120)


def trace_dir(root):
    found = [p.parent for p in Path(root).rglob("metadata")]
    if len(found) != 1:
        raise AssertionError(f"expected one trace under {root}, found {found}")
    return found[0]


def read_trace(trace):
    """([(full event name, {field: int}), ...], [timestamps in cycles], babeltrace2's stderr)."""
    proc = subprocess.run(["babeltrace2", "--clock-cycles", "--no-delta", str(trace)], capture_output=True, text=True,
                          check=True, timeout=300)
    events, times = [], []
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m is None:
            raise AssertionError(f"unexpected babeltrace2 line: {line}")
        fields = dict(item.split(" = ") for item in m.group(3).split(", "))
        events.append((m.group(2), {k: int(v, 0) for k, v in fields.items()}))
        times.append(int(m.group(1)))
    return events, times, proc.stderr


def private_home(tmp, name):
    home = Path(tmp) / name
    home.mkdir()
    home.chmod(0o777)
    Path(tmp).chmod(0o755)
    return home


def start_daemon(tmp):
    return SessionDaemon(private_home(tmp, "lttng-home"), as_nobody=IS_ROOT)


def record(tmp, sequence):
    """Feeds `sequence` under a private daemon and a session of its own; returns (feeder process, trace dir)."""
    daemon = start_daemon(tmp)
    try:
        out = private_home(tmp, "trace")
        for args in (["create", "provider", f"--output={out}"],
                     ["enable-channel", "--userspace", "--session=provider", "--subbuf-size=1M", "--num-subbuf=8",
                      "mem"],
                     ["enable-event", "--userspace", "--session=provider", "--channel=mem",
                      ",".join(f"vmtrace_mem:{e}" for e in EVENTS)],
                     ["start", "provider"]):
            proc = daemon.lttng(*args)
            if proc.returncode != 0:
                raise AssertionError(f"lttng {' '.join(args)}: {proc.stderr}")
        fed = feed("enabled\n" + feed_text(sequence), daemon.env)
        daemon.lttng("stop", "provider")
        daemon.lttng("destroy", "provider")
    finally:
        daemon.stop()
    return fed, trace_dir(out)


def sessiond_cannot_run():
    """Why no private lttng-sessiond can run here, or None."""
    if not shutil.which("lttng-sessiond") or not shutil.which("lttng"):
        return "lttng-tools is not installed"
    if IS_ROOT and not (shutil.which("setpriv") and shutil.which("unshare")):
        return "setpriv or unshare is missing (root runs the private daemon as nobody, the traced process apart)"
    import tempfile
    with tempfile.TemporaryDirectory(prefix="vmtrace-ust-probe-") as tmp:
        try:
            start_daemon(tmp).stop()
        except (subprocess.SubprocessError, AssertionError, OSError) as e:
            return f"lttng-sessiond does not start: {e}"
    return None


class MemProviderTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        # One recording serves the tests that read it.
        import tempfile
        cls._class_tmp = tempfile.TemporaryDirectory(prefix="vmtrace-ust-")
        tmp = Path(cls._class_tmp.name)
        cls.sequence = known_sequence()
        cls.fed, cls.trace = record(tmp, cls.sequence)
        cls.events, cls.times, cls.bt_stderr = read_trace(cls.trace)

    @classmethod
    def tearDownClass(cls):
        cls._class_tmp.cleanup()

    def test_every_event_and_field_value_arrives_exactly_in_order(self):
        self.assertEqual(self.fed.returncode, 0, self.fed.stderr)
        self.assertEqual(self.fed.stdout, "1\n", "vmtrace_mem_access_enabled() while the session records")
        self.assertNotIn("discarded", self.bt_stderr)
        expected = [(f"vmtrace_mem:{name}", dict(zip(FIELDS[name], values))) for name, values in self.sequence]
        self.assertEqual(len(self.events), len(expected), "records in != records out")
        for i, (got, want) in enumerate(zip(self.events, expected)):
            self.assertEqual(got, want, f"record {i}")
        # Each call takes its own time stamp when it is made.
        self.assertTrue(all(a < b for a, b in zip(self.times, self.times[1:])))

    def test_metadata_follows_the_schema_for_the_ust_provider(self):
        proc = subprocess.run([sys.executable, str(SOURCE_DIR / "tests" / "schema" / "check_trace_schema.py"),
                               str(self.trace), "--emitter", "ust-provider", "--require", *EVENTS],
                              capture_output=True, text=True, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        metadata = subprocess.run(["babeltrace2", "--output-format=ctf-metadata", str(self.trace)],
                                  capture_output=True, text=True, check=True).stdout
        # lttng-ust's clock: CLOCK_MONOTONIC, named as the kernel traces' clock.
        self.assertRegex(metadata, r'clock \{\s*name = "monotonic";')

    def test_sync_filter_takes_the_real_trace_for_a_memory_tracer(self):
        # A simulated host without memsync marks: the tracer's marks at BASE
        # have no counterpart, and the filter says so naming it a memory tracer.
        rec = simulate(self.tmp / "sim", seed=13, memory=True, memory_sync=False, duration_ms=1_000,
                       memory_accesses_per_us=0.02, ground_truth_intervals=False)
        # The known sequence without its last mark, on another page.
        fed, trace = record(self.tmp, known_sequence(accesses=5000)[:-3])
        self.assertEqual(fed.returncode, 0, fed.stderr)
        traces = [rec.host] + rec.guests + [str(trace)]
        proc, stats = synchronize(traces, self.tmp / "synced", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
        self.assertIsNotNone(stats, proc.stderr[-3000:])
        metadata = subprocess.run(["babeltrace2", "--output-format=ctf-metadata", str(trace)],
                                  capture_output=True, text=True, check=True).stdout
        hostname = re.search(r'hostname = "([^"]*)"', metadata).group(1)
        ours = [m for m in stats["machines"] if m["source"] == f"in{len(traces) - 1}"]
        self.assertEqual([(m["name"], m["role"]) for m in ours], [(hostname, "memory tracer")])
        self.assertEqual(ours[0]["events_in"], ours[0]["events_out"])
        self.assertIn(f"(from `in{len(traces) - 1}`) (memory tracer, hpa {BASE:#x}): its vmtrace_mem_sync marks have "
                      "no usable counterpart in the host trace", " ".join(proc.stderr.split()))
        # `vmtrace isolate` finds the trace under the session's output directory
        # and takes it for the memory trace: refused for the same reason.
        top = trace.parents[3]  # OUT/ust/uid/UID/64-bit
        cli = subprocess.run([VMTRACE, "isolate", rec.host, *rec.guests, "--memory", str(top), "-o",
                              str(self.tmp / "isolated")], capture_output=True, text=True, check=False, timeout=300)
        self.assertEqual(cli.returncode, 1, cli.stderr)
        self.assertIn(f"memory trace `{hostname}` is not on the host's time base", cli.stderr)
        # The whole known sequence ends with a mark on another page: refused, by name.
        proc, _ = synchronize(traces[:-1] + [str(self.trace)], self.tmp / "contradicting", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
        self.assertRegex(" ".join(proc.stderr.split()),
                         rf"\(from `in{len(traces) - 1}`\): event vmtrace_mem:vmtrace_mem_sync at \d+ ns "
                         rf"\(cnt {U32}\) has hpa {U64:#x}, but its earlier marks had {BASE:#x}")

    def test_disabled_events_cost_a_branch_and_record_nothing(self):
        if not IS_ROOT and Path("/run/lttng/lttng-ust-sock-8").exists():
            self.skipTest("a root lttng-sessiond runs here and may enable the events (root keeps it apart)")
        daemon = start_daemon(self.tmp)
        try:
            proc = feed("enabled\n" + feed_text(known_sequence(accesses=100)), daemon.env)
        finally:
            daemon.stop()
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr), (0, "0\n", ""))
        # No session daemon at all: nothing waits, nothing fails.
        env = dict(os.environ, LTTNG_HOME=str(private_home(self.tmp, "none")))
        proc = feed("enabled\naccess 1 2 4 1 3\n", env)
        self.assertEqual((proc.returncode, proc.stdout, proc.stderr), (0, "0\n", ""))

    def test_the_feeder_refuses_a_bad_line_naming_it(self):
        env = dict(os.environ, LTTNG_HOME=str(private_home(self.tmp, "none")))
        for text in ("access 1 2 3\n", "access 1 2 256 1 0\n", "sync 4294967296 0 0\n", "open -1\n", "frob 1\n",
                     "lost 1 2\n"):
            with self.subTest(text=text):
                proc = feed("enabled\n" + text, env)
                self.assertEqual(proc.returncode, 2)
                self.assertEqual(proc.stderr, f"mem_tracer_feed: line 2: cannot read `{text.strip()}`\n")


if __name__ == "__main__":
    reason = sessiond_cannot_run()
    if reason is not None:
        print(f"skipped: {reason}", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
