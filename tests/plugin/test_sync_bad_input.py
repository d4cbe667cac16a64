#!/usr/bin/env python3
"""filter.vmtrace.sync on bad input: every case gets a clear message that
names the trace or parameter, a non-zero exit where the output cannot be
trusted, and no crash (babeltrace2 exits 1 with our error cause, never by
a signal)."""
import shutil
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import TempDirTestCase, babeltrace, machine_stats, simulate, sync_graph, synchronize  # noqa: E402

SHORT = dict(duration_ms=1_500)


class SyncBadInputTest(TempDirTestCase):
    def assert_clean_failure(self, proc, *words):
        self.assertEqual(proc.returncode, 1, f"expected a clean error exit:\n{proc.stderr[-3000:]}")
        for word in words:
            self.assertIn(word, proc.stderr)

    def test_guest_without_vmsync_passes_through_unchanged_with_a_warning(self):
        rec = simulate(self.tmp, seed=1, guest_sync=False, **SHORT)
        proc, stats = synchronize([rec.host] + rec.guests, self.tmp)
        self.assertIn("has no vmsync events: passed through unchanged", proc.stderr)
        m = machine_stats(stats, "vmtrace-sim-guest0")
        self.assertEqual((m["quality"], m["mode"]), ("absent", "unchanged"))
        self.assertEqual(m["events_in"], m["events_out"])
        recorded = babeltrace([rec.guest(0)]).stdout
        synced_dir = next((self.tmp / "synchronized" / "vmtrace-sim-guest0").glob("*/kernel"))
        self.assertEqual(babeltrace([str(synced_dir)]).stdout, recorded)

    def test_duplicate_cnt_is_an_error_naming_trace_and_event(self):
        rec = simulate(self.tmp, seed=2, corrupt_cnt="duplicate", corrupt_cnt_every=50, **SHORT)
        proc, stats = synchronize([rec.host] + rec.guests, self.tmp, check=False)
        self.assert_clean_failure(proc, "duplicate", "vmsync_", "cnt", "vmtrace-sim-")
        anomalies = machine_stats(stats, "vmtrace-sim-guest0")["anomalies"]
        self.assertGreater(anomalies["duplicate_cnt"], 0)
        # non-strict mode warns and exits 0
        proc, _ = synchronize([rec.host] + rec.guests, self.tmp / "lenient", strict=False)
        self.assertIn("WARNING", proc.stderr)

    def test_out_of_order_cnt_is_an_error(self):
        rec = simulate(self.tmp, seed=3, corrupt_cnt="reorder", corrupt_cnt_every=40, **SHORT)
        proc, stats = synchronize([rec.host] + rec.guests, self.tmp, check=False)
        self.assert_clean_failure(proc, "out-of-order", "comes after cnt")
        self.assertGreater(machine_stats(stats, "vmtrace-sim-guest1")["anomalies"]["out_of_order_cnt"], 0)

    def test_vm_uid_without_guest_trace_is_a_warning(self):
        rec = simulate(self.tmp, seed=4, **SHORT)
        proc, stats = synchronize([rec.host, rec.guest(0)], self.tmp)
        self.assertIn("but no input trace is that guest", proc.stderr)
        self.assertEqual(len(stats["vm_uids_without_guest_trace"]), 1)
        self.assertEqual(machine_stats(stats, "vmtrace-sim-guest0")["quality"], "accurate")

    def test_guest_whose_host_recorded_no_vmsync_is_an_error(self):
        rec = simulate(self.tmp, seed=5, host_sync=False, **SHORT)
        proc, stats = synchronize([rec.host] + rec.guests, self.tmp, check=False)
        self.assert_clean_failure(proc, "vmtrace-sim-guest0", "no usable counterpart in the host trace")
        self.assertEqual(machine_stats(stats, "vmtrace-sim-guest0")["quality"], "incomplete")

    def test_no_host_among_the_inputs_is_an_error(self):
        rec = simulate(self.tmp, seed=6, **SHORT)
        proc, _ = synchronize(rec.guests, self.tmp, check=False)
        self.assert_clean_failure(proc, "no input trace is a KVM host")

    def test_contradictory_handshakes_fail_naming_the_event(self):
        # The guest clocks step 5 ms forward halfway: the handshakes after
        # the step contradict the ones before, whatever the line.
        rec = simulate(self.tmp, seed=7, guest_clock_step_ns=5_000_000, **SHORT)
        proc, _ = synchronize([rec.host] + rec.guests, self.tmp, check=False)
        self.assert_clean_failure(proc, "matched vmsync messages contradict the others", "vmsync_")

    def test_truncated_and_corrupt_ctf_files_are_reported_by_file(self):
        rec = simulate(self.tmp, seed=8, **SHORT)
        broken = self.tmp / "broken-guest"
        shutil.copytree(rec.guest(0), broken)
        stream = sorted(p for p in broken.iterdir() if p.name != "metadata" and p.is_file())[0]
        data = stream.read_bytes()
        stream.write_bytes(data[: len(data) // 2 + 3])  # cut inside a packet
        proc = babeltrace(sync_graph([rec.host, str(broken)], sink="dummy"), check=False)
        self.assert_clean_failure(proc, str(broken))

        garbage = self.tmp / "garbage-guest"
        shutil.copytree(rec.guest(1), garbage)
        (garbage / "metadata").write_text("/* CTF 1.8 */\ntrace { major = 1; minor = 8; ", encoding="utf-8")
        proc = babeltrace(sync_graph([rec.host, str(garbage)], sink="dummy"), check=False)
        self.assert_clean_failure(proc, "metadata")

    def test_bad_parameters_are_refused_by_name(self):
        rec = simulate(self.tmp, seed=9, duration_ms=200)
        for bad, word in [(dict(window_ms=-1), "window-ms"), (dict(windw_ms=5), "windw-ms"),
                          (dict(max_buffered_messages=0), "max-buffered-messages"), (dict(strict="maybe"), "strict"),
                          (dict(estimate_only="maybe"), "estimate-only"), (dict(ranges="in0"), "ranges"),
                          (dict(ranges=[1, 2]), "ranges")]:
            with self.subTest(params=bad):
                proc = babeltrace(sync_graph([rec.host] + rec.guests, sink="dummy", **bad), check=False)
                self.assert_clean_failure(proc, word)

    def test_events_in_equal_events_out_with_a_tiny_buffer(self):
        # A buffer far below the window still loses nothing.
        rec = simulate(self.tmp, seed=10, **SHORT)
        proc, stats = synchronize([rec.host] + rec.guests, self.tmp, window_ms=100, max_buffered_messages=300,
                                  strict=False)
        self.assertEqual(sorted(m["role"] for m in stats["machines"]), ["guest", "guest", "host"])
        for m in stats["machines"]:
            self.assertEqual(m["events_in"], m["events_out"], m["name"])
            self.assertEqual(m["messages_in"], m["messages_out"], m["name"])
        self.assertGreater(stats["window_truncations"], 0)
        self.assertIn("cut the look-ahead window short", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
