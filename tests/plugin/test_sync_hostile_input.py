#!/usr/bin/env python3
"""filter.vmtrace.sync on parameters and damaged traces that a user's bad
day brings: each case ends in a clean error (exit 1, never a signal) that
names the parameter or the trace, or in a counted anomaly that fails the
sync past its threshold; never in exit 0 with wrong output."""
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import TempDirTestCase, babeltrace, machine_stats, simulate, sync_graph, synchronize  # noqa: E402

SHORT = dict(duration_ms=1_500)


class SyncHostileInputTest(TempDirTestCase):
    def assert_clean_failure(self, proc, *words):
        self.assertEqual(proc.returncode, 1, f"expected a clean error exit:\n{proc.stderr[-3000:]}")
        for word in words:
            self.assertIn(word, proc.stderr)

    def test_estimator_is_chosen_by_name_and_an_unknown_one_is_refused(self):
        rec = simulate(self.tmp, seed=21, duration_ms=400)
        proc, stats = synchronize([rec.host] + rec.guests, self.tmp, estimator="convex-hull")
        self.assertEqual(machine_stats(stats, "vmtrace-sim-guest0")["method"], "convex-hull")
        self.assertIn("(convex-hull), hull", proc.stderr)
        proc = babeltrace(sync_graph([rec.host] + rec.guests, sink="dummy", estimator="tsc-offst"), check=False)
        self.assert_clean_failure(proc, "parameter `estimator`", "`tsc-offst`", "known: convex-hull")


if __name__ == "__main__":
    unittest.main(verbosity=2)
