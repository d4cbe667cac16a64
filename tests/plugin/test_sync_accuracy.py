#!/usr/bin/env python3
"""filter.vmtrace.sync against the simulator's ground truth.

60 s recordings, guests offset by seconds and drifting up to +-200 ppm,
vmsync latencies of 1-50 us: every synchronised guest timestamp must be
within 1 us of the truth, inside the accuracy bound the filter reports,
and inside a host guest-mode interval of its vCPU.
"""
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from sync_error import guest_errors  # noqa: E402
from vmtrace_test import TempDirTestCase, machine_stats, simulate, synchronize  # noqa: E402

# A light workload keeps the 60 s recordings small; the sync sees the same
# handshake rate as with a busy guest.
LIGHT = dict(duration_ms=60_000, mean_guest_run_us=2_000, mean_guest_switch_us=20_000)

CASES = [
    dict(seed=1),
    dict(seed=2),
    dict(seed=3, latency_mean_ns=10_000),
    dict(seed=4, guest_drifts_ppm=[200.0, -200.0], guest_offsets_s=[-4.5, 3.25], latency_mean_ns=20_000),
    dict(seed=5, latency_min_ns=10_000, latency_mean_ns=8_000, latency_max_ns=50_000),
]


class SyncAccuracyTest(TempDirTestCase):
    def test_synchronised_guest_times_match_the_ground_truth(self):
        for case in CASES:
            with self.subTest(**case):
                out = self.tmp / f"seed{case['seed']}"
                rec = simulate(out, ground_truth_intervals=False, **LIGHT, **case)
                proc, stats = synchronize([rec.host] + rec.guests, out)
                self.assertIn("vmtrace sync summary", proc.stderr)
                truth = rec.truth()
                self.assertEqual(len(truth["guests"]), 2)  # the loop checks each guest
                for index, guest in enumerate(truth["guests"]):
                    m = machine_stats(stats, guest["hostname"])
                    self.assertEqual(m["quality"], "accurate")
                    self.assertEqual(m["mode"], "synchronized")
                    self.assertEqual(m["events_in"], m["events_out"])
                    self.assertGreater(m["matches"]["guest_to_host"], 10_000)
                    self.assertEqual(m["consistency"]["violations"], 0, m["consistency"])
                    self.assertGreater(m["consistency"]["checked"], 0.99 * m["events_out"])
                    synced = next((out / "synchronized" / guest["hostname"]).glob("*/kernel"))
                    count, worst, mean = guest_errors(guest["transform"], rec.guest(index), str(synced))
                    self.assertEqual(count, m["events_out"])
                    print(f"  seed {case['seed']} {guest['hostname']}: drift {guest['drift_ppm']:+.1f} ppm, "
                          f"offset {guest['offset_s']:+.3f} s: max error {worst:.0f} ns, mean {mean:.1f} ns, "
                          f"bound {m['max_applied_bound_ns']} ns", file=sys.stderr)
                    self.assertLess(worst, 1_000.0)
                    self.assertLessEqual(worst, m["max_applied_bound_ns"])
                    # the estimated drift is the true one
                    true_drift = 1e6 * (1e9 / (1e9 + guest["transform"]["drift_ppb"]) - 1)
                    self.assertAlmostEqual(m["transform"]["drift_ppm"], true_drift, delta=0.05)

    def test_a_biased_host_clock_reading_is_caught_by_the_consistency_check(self):
        # The host records every guest->host receipt 300 us late: still
        # causal, so the hull accepts it, but the transform is shifted by
        # ~150 us and guest events land outside guest mode.
        out = self.tmp / "biased"
        rec = simulate(out, seed=6, host_receive_delay_ns=300_000, **LIGHT)
        proc, stats = synchronize([rec.host] + rec.guests, out, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("fall outside the host's guest-mode intervals", proc.stderr)
        self.assertEqual(len(rec.truth()["guests"]), 2)  # the loop checks each guest
        for guest in rec.truth()["guests"]:
            m = machine_stats(stats, guest["hostname"])
            self.assertGreater(m["consistency"]["violations"], 0.01 * m["consistency"]["checked"])
            self.assertIn("not in guest mode", m["consistency"]["first_violation"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
