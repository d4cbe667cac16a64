#!/usr/bin/env python3
"""`vmtrace top` on live sessions of a real lttng-relayd and lttng-sessiond on
127.0.0.1, fed by a user-space test application (tests/live/live_session.py):
every event the session recorded reaches the live view, a session that
starts late is waited for, and what goes wrong (no relay daemon, an unknown
session, a second viewer, the relay daemon dying, a source going silent) is
told.  Exits 77 (skipped) only when the LTTng daemons cannot run here."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from live_session import Feeder, LiveSession, RelayDaemon, free_ports, start_session_daemon  # noqa: E402
from vmtrace_test import SOURCE_DIR, TempDirTestCase  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(SOURCE_DIR / "build" / "vmtrace"))
HOSTNAME = os.uname().nodename
LIVE_TIMER_US = 200_000


def offline_count(relay_out, session):
    """Events of `session`'s trace as the relay daemon wrote it, read by babeltrace2."""
    found = [p.parent for p in Path(relay_out).rglob("metadata") if f"/{session}-" in str(p)]
    if len(found) != 1:
        raise AssertionError(f"expected one trace of {session} under {relay_out}, found {found}")
    proc = subprocess.run(["babeltrace2", str(found[0])], capture_output=True, text=True, check=True, timeout=120)
    return len(proc.stdout.splitlines())


def viewers(relay, session):
    """The live viewers attached to `session` (src.ctf.lttng-live's `sessions` query)."""
    proc = subprocess.run(["babeltrace2", "query", "src.ctf.lttng-live", "sessions", "-p", f"url=\"{relay.url}\""],
                          capture_output=True, text=True, check=False, timeout=30)
    blocks = proc.stdout.split("- url:")
    for block in blocks:
        if re.search(rf"session-name: {re.escape(session)}\b", block):
            m = re.search(r"client-count: (\d+)", block)
            return int(m.group(1)) if m else 0
    return 0


def wait_until(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def daemons_cannot_run():
    for tool in ("lttng-sessiond", "lttng-relayd", "lttng"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


class LiveDaemons(TempDirTestCase):
    """A relay daemon and a session daemon of the test's own."""

    def setUp(self):
        super().setUp()
        self.tmp.chmod(0o755)
        self.relay = RelayDaemon(self.tmp / "relay")
        self.addCleanup(self.relay.stop)
        self.daemon = start_session_daemon(self.tmp / "home")
        self.addCleanup(self.daemon.stop)

    def url(self, session):
        return f"{self.relay.url}/host/{HOSTNAME}/{session}"


class LiveTopTest(LiveDaemons):
    def top(self, *args):
        proc = subprocess.Popen([VMTRACE, "top", "--json", "-d", "0.5", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def finish(self, proc, timeout=60):
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, [json.loads(line) for line in out.splitlines()], err

    def test_every_recorded_event_reaches_the_live_view(self):
        session = LiveSession(self.daemon, self.relay, "vmtrace-live", LIVE_TIMER_US)
        top = self.top("--relayd", self.relay.url)
        # lttng-live attaches at the sessions' current end: feed once attached
        wait_until(lambda: viewers(self.relay, "vmtrace-live") == 1, what="vmtrace top to attach")
        feeder = Feeder(self.daemon)
        feeder.run(3.0, 4000)
        feeder.close()
        time.sleep(1.0)
        session.destroy()
        rc, snapshots, err = self.finish(top)
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(len(snapshots), 4, err)
        final = snapshots[-1]
        self.assertTrue(final["final"], final)
        self.assertEqual(len(final["traces"]), 1, final["traces"])
        trace = final["traces"][0]
        self.assertEqual(trace["domain"], "ust")
        self.assertFalse(trace["analysed"])  # a user-space trace: counted only
        recorded = offline_count(self.relay.out, "vmtrace-live")
        self.assertEqual(recorded, feeder.sent)
        self.assertEqual(trace["events_total"] + trace["discarded_total"], recorded)
        self.assertEqual(trace["discarded_total"], 0)
        # Per interval: counts that add up, and the live delay while live.
        self.assertEqual(sum(s["traces"][0]["events"] for s in snapshots if s["traces"]), recorded)
        delays = [s["delay_ns"] for s in snapshots[:-1] if s["delay_ns"] is not None]
        self.assertTrue(delays)
        self.assertLess(max(delays), 3e9 + LIVE_TIMER_US * 1e3, delays)
        self.assertGreater(min(delays), 0)

    def test_a_session_that_starts_later_is_waited_for(self):
        top = self.top("--wait", self.url("late"))
        time.sleep(1.5)
        self.assertIsNone(top.poll())
        session = LiveSession(self.daemon, self.relay, "late", LIVE_TIMER_US)
        wait_until(lambda: viewers(self.relay, "late") == 1, what="vmtrace top to attach to the late session")
        feeder = Feeder(self.daemon)
        feeder.run(1.5, 2000)
        feeder.close()
        time.sleep(1.0)
        session.destroy()
        time.sleep(1.0)
        # --wait keeps waiting for the session to come back: stopped by
        # the user, it prints what it collected since its last interval.
        top.send_signal(signal.SIGINT)
        rc, snapshots, err = self.finish(top)
        self.assertEqual(rc, 0, err)
        self.assertTrue(snapshots[-1]["final"])
        self.assertEqual(snapshots[-1]["traces"][0]["events_total"], offline_count(self.relay.out, "late"))

    def test_no_relay_daemon(self):
        port = free_ports(1)[0]
        proc = subprocess.run([VMTRACE, "top", "--batch", "--relayd", f"net://127.0.0.1:{port}"], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn(f"net://127.0.0.1:{port}", proc.stderr)
        self.assertIn("lttng-relayd", proc.stderr)

    def test_an_unknown_session_is_named_with_the_ones_served(self):
        session = LiveSession(self.daemon, self.relay, "served", LIVE_TIMER_US)
        self.addCleanup(session.destroy)
        proc = subprocess.run([VMTRACE, "top", "--batch", self.url("nosuch")], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("no live session `nosuch`", proc.stderr)
        self.assertIn(f"/host/{HOSTNAME}/served", proc.stderr)

    def test_a_relay_daemon_without_sessions(self):
        proc = subprocess.run([VMTRACE, "top", "--batch", "--relayd", self.relay.url], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("serves no live session", proc.stderr)

    def test_a_second_viewer_is_refused_by_the_relay_daemon(self):
        session = LiveSession(self.daemon, self.relay, "watched", LIVE_TIMER_US)
        self.addCleanup(session.destroy)
        first = self.top(self.url("watched"))
        wait_until(lambda: viewers(self.relay, "watched") == 1, what="the first viewer")
        second = subprocess.run([VMTRACE, "top", "--batch", self.url("watched")], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(second.returncode, 1, second.stderr)
        self.assertIn("already a viewer", second.stderr)
        self.assertIn(self.url("watched"), second.stderr)
        self.assertIsNone(first.poll())

    def test_the_relay_daemon_dying_is_a_clear_error(self):
        session = LiveSession(self.daemon, self.relay, "dying", LIVE_TIMER_US)
        self.addCleanup(session.destroy)
        top = self.top(self.url("dying"))
        wait_until(lambda: viewers(self.relay, "dying") == 1, what="vmtrace top to attach")
        feeder = Feeder(self.daemon)
        feeder.run(1.0, 2000)
        self.relay.stop(signal.SIGKILL)
        rc, _, err = self.finish(top)
        feeder.close()
        self.assertEqual(rc, 1, err)
        self.assertIn(self.url("dying"), err)
        self.assertNotIn("Traceback", err)

    def test_a_silent_source_is_shown_stale(self):
        # Two machines: one keeps recording, the other's tracer stops
        # (its session daemon and consumer frozen: no data, no beacon).
        other = start_session_daemon(self.tmp / "home2")
        self.addCleanup(other.stop)
        busy = LiveSession(self.daemon, self.relay, "busy", LIVE_TIMER_US)
        self.addCleanup(busy.destroy)
        frozen = LiveSession(other, self.relay, "frozen", LIVE_TIMER_US)
        top = self.top("--stale-seconds", "1.5", self.url("busy"), self.url("frozen"))
        wait_until(lambda: viewers(self.relay, "busy") == 1 and viewers(self.relay, "frozen") == 1,
                   what="vmtrace top to attach to both")
        feeders = [Feeder(self.daemon), Feeder(other)]
        for f in feeders:
            f.run(0.5, 1000)
        os.killpg(other.pid, signal.SIGSTOP)
        try:
            feeders[0].run(4.0, 1000)
        finally:
            os.killpg(other.pid, signal.SIGCONT)
        for f in feeders:
            f.close()
        top.send_signal(signal.SIGINT)
        rc, snapshots, err = self.finish(top)
        frozen.destroy()
        self.assertEqual(rc, 0, err)
        stale = [entry["source"] for s in snapshots for entry in s.get("stale_inputs", [])]
        self.assertIn(self.url("frozen"), stale)
        self.assertNotIn(self.url("busy"), stale)


class LiveAnalyzeTest(LiveDaemons):
    """`vmtrace analyze --live`: the offline analysis's files, written when
    the sessions end or when the user stops it."""

    def analyze(self, out, *urls):
        proc = subprocess.Popen([VMTRACE, "analyze", "--live", *urls, "-o", str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def test_stopped_by_the_user_it_writes_what_it_read(self):
        session = LiveSession(self.daemon, self.relay, "analysed", LIVE_TIMER_US)
        self.addCleanup(session.destroy)
        out = self.tmp / "analysis"
        proc = self.analyze(out, self.url("analysed"))
        wait_until(lambda: viewers(self.relay, "analysed") == 1, what="vmtrace analyze to attach")
        feeder = Feeder(self.daemon)
        feeder.run(2.0, 3000)
        feeder.close()
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, stderr)
        results = json.loads((out / "analysis.json").read_text())
        self.assertEqual(results["ended_early"], "stopped before the end of the live session")
        self.assertEqual(results["events"]["ignored"], offline_count(self.relay.out, "analysed"))
        self.assertIn("ended early", (out / "summary.txt").read_text())
        self.assertIn("ended early", stdout)

    def test_a_session_that_ends_ends_the_analysis(self):
        session = LiveSession(self.daemon, self.relay, "ending", LIVE_TIMER_US)
        out = self.tmp / "analysis"
        proc = self.analyze(out, self.url("ending"))
        wait_until(lambda: viewers(self.relay, "ending") == 1, what="vmtrace analyze to attach")
        feeder = Feeder(self.daemon)
        feeder.run(1.0, 3000)
        feeder.close()
        time.sleep(1.0)
        session.destroy()
        stdout, stderr = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, stderr)
        results = json.loads((out / "analysis.json").read_text())
        self.assertIsNone(results["ended_early"])
        self.assertEqual(results["events"]["ignored"], offline_count(self.relay.out, "ending"))

    def test_a_url_that_is_no_session_is_a_usage_error(self):
        proc = subprocess.run([VMTRACE, "analyze", "--live", "/tmp/not-a-url", "-o", str(self.tmp / "o")],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("net://HOST[:PORT]/host/HOSTNAME/SESSION", proc.stderr)


if __name__ == "__main__":
    why = daemons_cannot_run()
    if why:
        print(f"skipped: {why}")
        sys.exit(77)
    unittest.main()
