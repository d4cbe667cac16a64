#!/usr/bin/env python3
"""`vmtrace sync`'s fast path: guest clocks rewritten in the metadata, the
stream files linked, against the simulator's ground truth and read by two
independent CTF readers (babeltrace2 and babeltrace 1.x)."""
import json
import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from sync_error import guest_errors, read_events  # noqa: E402
from vmtrace_test import TempDirTestCase, simulate, unpack_recording  # noqa: E402

ARCHIVE = Path(__file__).resolve().parents[2] / "examples" / "lab-recording" / "recording.tar.xz"
VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))

LIGHT = dict(duration_ms=60_000, mean_guest_run_us=2_000, mean_guest_switch_us=20_000, ground_truth_intervals=False)

CASES = [
    dict(seed=11),
    dict(seed=12, guest_drifts_ppm=[200.0, -200.0], guest_offsets_s=[-4.5, 3.25]),
    dict(seed=13, latency_mean_ns=10_000),
    dict(seed=14, guest_drifts_ppm=[-173.4567, 61.2345], guest_offsets_s=[7.125, -0.5]),
]


def vmtrace(*args):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=600)


def trace_files(root):
    return {p.relative_to(root): p.stat() for p in sorted(Path(root).rglob("*")) if p.is_file()}


class FastSyncTest(TempDirTestCase):
    def sync(self, rec, out, *extra):
        stats = out.parent / f"{out.name}-stats.json"
        proc = vmtrace("sync", rec.host, *rec.guests, "-o", out, "--stats", stats, *extra)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc, json.loads(stats.read_text(encoding="utf-8"))

    def test_guest_times_match_the_ground_truth_in_both_readers(self):
        have_babeltrace1 = shutil.which("babeltrace") is not None
        self.assertTrue(have_babeltrace1, "babeltrace 1.x is missing: scripts/install-deps.sh installs it")
        for case in CASES:
            with self.subTest(**case):
                work = self.tmp / f"seed{case['seed']}"
                rec = simulate(work, **LIGHT, **case)
                before = trace_files(rec.root)
                proc, stats = self.sync(rec, work / "out")
                self.assertEqual(stats["path"], "clock-rewrite")
                self.assertIn("clock rewritten", proc.stderr)
                self.assertEqual(stats["stream_files"]["copied"], 0)  # same file system: links
                truth = rec.truth()
                for index, guest in enumerate(truth["guests"]):
                    entry = next(t for t in stats["traces"] if t["output"].startswith(guest["hostname"] + "/"))
                    clock = entry["clock"]
                    machine = next(m for m in stats["machines"] if m["name"] == guest["hostname"])
                    self.assertEqual(machine["quality"], "accurate")
                    bound = clock["sync_bound_ns"]
                    self.assertEqual(bound, machine["bound_over_range_ns"] + clock["rounding_ns"])
                    synced = work / "out" / entry["output"]
                    worst_by_reader = {}
                    for reader in ("babeltrace2", "babeltrace"):
                        count, worst, mean = guest_errors(guest["transform"], rec.guest(index), str(synced),
                                                          reader=reader)
                        self.assertEqual(count, machine["events_in"])
                        worst_by_reader[reader] = worst
                        print(f"  seed {case['seed']} {guest['hostname']} ({reader}): drift "
                              f"{guest['drift_ppm']:+.4f} ppm: max error {worst:.0f} ns, mean {mean:.1f} ns, "
                              f"bound {bound} ns (rounding {clock['rounding_ns']} ns)", file=sys.stderr)
                        self.assertLess(worst, 1_000.0)
                        self.assertLessEqual(worst, bound)
                    # The environment a downstream component reads.
                    metadata = (synced / "metadata").read_text(encoding="utf-8")
                    self.assertIn(f"vmtrace_sync_bound_ns = {bound};", metadata)
                    self.assertIn(f'vmtrace_time_base = "host {truth["host"]["hostname"]}";', metadata)
                    # The stream files are the recorded ones, linked, untouched.
                    for stream in synced.iterdir():
                        if stream.name != "metadata":
                            original = Path(rec.guest(index)) / stream.name
                            self.assertEqual(stream.stat().st_ino, original.stat().st_ino, stream)
                self.assertEqual(trace_files(rec.root).keys(), before.keys())
                for path, st in trace_files(rec.root).items():
                    self.assertEqual((st.st_size, st.st_mtime_ns), (before[path].st_size, before[path].st_mtime_ns),
                                     path)

    def test_readers_agree_on_every_event(self):
        rec = simulate(self.tmp / "agree", seed=15, duration_ms=5_000)
        self.sync(rec, self.tmp / "agree" / "out")
        synced = next((self.tmp / "agree" / "out").glob("vmtrace-sim-guest0/*/kernel"))
        two = read_events(str(synced), "babeltrace2")
        one = read_events(str(synced), "babeltrace")
        self.assertEqual(sorted(two), sorted(one))
        for cpu in two:
            self.assertEqual(two[cpu], one[cpu])

    def test_per_event_path_and_fast_path_agree_within_their_bounds(self):
        rec = simulate(self.tmp / "both", seed=16, duration_ms=5_000)
        _, fast = self.sync(rec, self.tmp / "both" / "fast")
        proc, slow = self.sync(rec, self.tmp / "both" / "slow", "--rewrite-events")
        self.assertNotIn("clock rewritten", proc.stderr)
        self.assertFalse(slow.get("estimate_only"))
        for index in range(2):
            name = f"vmtrace-sim-guest{index}"
            f = read_events(str(next((self.tmp / "both" / "fast").glob(f"{name}/*/kernel"))))
            s = read_events(str(next((self.tmp / "both" / "slow").glob(f"{name}/*/kernel"))))
            bound = next(t for t in fast["traces"] if t["output"].startswith(name))["clock"]["sync_bound_ns"]
            slow_bound = next(m for m in slow["machines"] if m["name"] == name)["max_applied_bound_ns"]
            worst = max(abs(a[0] - b[0]) for cpu in f for a, b in zip(f[cpu], s[cpu]))
            self.assertLessEqual(worst, bound + slow_bound)
            self.assertEqual({cpu: len(v) for cpu, v in f.items()}, {cpu: len(v) for cpu, v in s.items()})

    def test_analyze_reads_the_fast_output_as_synchronised(self):
        rec = simulate(self.tmp / "an", seed=17, duration_ms=3_000)
        self.sync(rec, self.tmp / "an" / "out")
        proc = vmtrace("analyze", "--synchronized", self.tmp / "an" / "out", "-o", self.tmp / "an" / "analysis")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        analysis = json.loads((self.tmp / "an" / "analysis" / "analysis.json").read_text(encoding="utf-8"))
        self.assertEqual(len(analysis["vms"]), 2)

    def test_a_two_hour_trace_reports_its_rounding(self):
        # A sparse 2 h recording: the frequency rounding is reported, added
        # to the bound, and the times stay within it.
        rec = simulate(self.tmp / "long", seed=7, duration_ms=7_200_000, sync_period_us=500_000,
                       mean_guest_run_us=5_000_000, mean_guest_switch_us=5_000_000, guests=1, vcpus=1, host_cpus=2,
                       ground_truth_intervals=False, guest_drifts_ppm=[-123.4567])
        proc, stats = self.sync(rec, self.tmp / "long" / "out")
        entry = next(t for t in stats["traces"] if t["clock"] != "unchanged")
        self.assertGreater(entry["clock"]["rounding_ns"], 0)
        count, worst, _ = guest_errors(rec.truth()["guests"][0]["transform"], rec.guest(0),
                                       str(self.tmp / "long" / "out" / entry["output"]))
        self.assertGreater(count, 1000)
        self.assertLessEqual(worst, entry["clock"]["sync_bound_ns"])

    def test_a_vmsync_channel_is_read_alone_with_the_range_from_the_index(self):
        # The lab recording's guest l2a, its CPU 1 stream renamed as if it
        # were a vmsync channel: the estimate reads that file only (and the
        # trace's range from LTTng's index), the output holds every file.
        keep, root = unpack_recording(ARCHIVE, "vmtrace-fast-")
        self.addCleanup(keep.cleanup)
        host = next((root / "recording" / "l1" / "trace").glob("**/metadata")).parent
        guest = next((root / "recording" / "l2a" / "trace").glob("**/metadata")).parent
        os.rename(guest / "ch_1", guest / "vmsync_1")
        os.rename(guest / "index" / "ch_1.idx", guest / "index" / "vmsync_1.idx")
        out = self.tmp / "channel"
        stats_path = self.tmp / "channel-stats.json"
        proc = vmtrace("sync", host, guest, "-o", out, "--stats", stats_path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        self.assertEqual(stats["vmsync_channel_traces"], 1)
        machine = next(m for m in stats["machines"] if m["role"] == "guest")
        self.assertEqual(machine["quality"], "accurate")
        whole = len(read_events(str(guest)).get(1, []))  # cpu 1: the vmsync_1 file
        self.assertEqual(machine["events_in"], whole)
        entry = next(t for t in stats["traces"] if t["clock"] != "unchanged")
        synced = out / entry["output"]
        self.assertEqual(sorted(p.name for p in synced.iterdir()), ["ch_0", "index", "metadata", "vmsync_1"])
        # The range covers the whole trace, not only the channel's events.
        first = min(events[0][0] for events in read_events(str(guest)).values())
        self.assertLessEqual(machine["range_ns"][0], first)
        proc = vmtrace("analyze", "--synchronized", out, "-o", self.tmp / "channel-analysis", "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_a_simulated_vmsync_channel_gives_the_same_accuracy(self):
        # The simulator writes the vmsync and VM identity events to
        # vmsync_CPU streams as `vmtrace record` does; sink.ctf.fs writes no
        # index, so the range comes from babeltrace2's trace-infos query.
        work = self.tmp / "simchannel"
        rec = simulate(work, seed=19, sync_channel=True, guest_drifts_ppm=[-150.25, 99.5], **LIGHT)
        proc, stats = self.sync(rec, work / "out")
        self.assertEqual(stats["vmsync_channel_traces"], 3)
        truth = rec.truth()
        for index, guest in enumerate(truth["guests"]):
            machine = next(m for m in stats["machines"] if m["name"] == guest["hostname"])
            events = [e for v in read_events(rec.guest(index)).values() for e in v]
            whole = len(events)
            # Only the handshakes were read.
            self.assertEqual(machine["events_in"], sum(1 for _, name in events if name.startswith("vmsync_")))
            self.assertLess(machine["events_in"], whole)
            entry = next(t for t in stats["traces"] if t["output"].startswith(guest["hostname"] + "/"))
            count, worst, _ = guest_errors(guest["transform"], rec.guest(index), str(work / "out" / entry["output"]))
            self.assertEqual(count, whole)
            self.assertLess(worst, 1_000.0)
            self.assertLessEqual(worst, entry["clock"]["sync_bound_ns"])
            # The bound covers the trace's range, not only its handshakes'.
            first = min(events[0][0] for events in read_events(rec.guest(index)).values())
            self.assertLessEqual(machine["range_ns"][0], first)

    def test_a_damaged_stream_beside_a_vmsync_channel_is_an_error_not_a_crash(self):
        work = self.tmp / "damaged"
        rec = simulate(work, seed=20, duration_ms=2_000, sync_channel=True)
        stream = Path(rec.guest(0)) / "stream"
        data = bytearray(stream.read_bytes())
        data[1] ^= 0xFF  # the packet magic
        stream.write_bytes(bytes(data))
        proc = vmtrace("sync", rec.host, *rec.guests, "-o", work / "out")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(rec.guest(0), proc.stderr)
        self.assertIn("Invalid CTF magic number", proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertFalse((work / "out").exists())

    def test_a_slow_guest_clock_adds_its_rounding_to_the_bound(self):
        # A guest clock at 25 MHz: the rewritten frequency's rounding is a
        # large share of the bound over a minute, and still a bound.
        work = self.tmp / "slowclock"
        rec = simulate(work, seed=8, guest_clock_hz=25_000_000, **LIGHT)
        _, stats = self.sync(rec, work / "out")
        for index, guest in enumerate(rec.truth()["guests"]):
            entry = next(t for t in stats["traces"] if t["output"].startswith(guest["hostname"] + "/"))
            self.assertGreater(entry["clock"]["rounding_ns"], 100)
            for reader in ("babeltrace2", "babeltrace"):
                _, worst, _ = guest_errors(guest["transform"], rec.guest(index), str(work / "out" / entry["output"]),
                                           reader=reader)
                self.assertLessEqual(worst, entry["clock"]["sync_bound_ns"], reader)

    def test_two_hours_of_a_slow_clock_fall_back_to_the_per_event_path(self):
        # Over two hours a 25 MHz clock's integer frequency would err by tens
        # of microseconds, far past the bound: the command says so and
        # rewrites the events instead.
        work = self.tmp / "fallback"
        rec = simulate(work, seed=7, duration_ms=7_200_000, sync_period_us=500_000, mean_guest_run_us=5_000_000,
                       mean_guest_switch_us=5_000_000, guests=1, vcpus=1, host_cpus=2, ground_truth_intervals=False,
                       guest_clock_hz=25_000_000, guest_drifts_ppm=[-123.4567])
        proc, stats = self.sync(rec, work / "out")
        self.assertIn("integer frequency would add up to", proc.stderr)
        self.assertIn("synchronising event by event instead", proc.stderr)
        self.assertEqual(stats["path"], "rewrite-events")
        self.assertIn("more than the synchronisation bound", stats["fast_path_refused"])
        machine = next(m for m in stats["machines"] if m["role"] == "guest")
        synced = next((work / "out").glob("vmtrace-sim-guest0/*/kernel"))
        count, worst, _ = guest_errors(rec.truth()["guests"][0]["transform"], rec.guest(0), str(synced))
        self.assertEqual(count, machine["events_out"])
        self.assertLessEqual(worst, machine["max_applied_bound_ns"])

    def test_a_synchronised_output_is_refused_as_input(self):
        rec = simulate(self.tmp / "twice", seed=18, duration_ms=1_000)
        self.sync(rec, self.tmp / "twice" / "out")
        out = self.tmp / "twice" / "out"
        proc = vmtrace("sync", next(out.glob("vmtrace-sim-host")), next(out.glob("vmtrace-sim-guest0")), "-o",
                       self.tmp / "twice" / "again")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("already on the time base of host", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
