#!/usr/bin/env python3
"""source.vmtrace.scenario in real babeltrace2 graphs: the CTF it produces
matches the event schema, reads back as LTTng kernel traces, and is
deterministic."""
import hashlib
import json
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, babeltrace, params, simulate  # noqa: E402

CHECKER = SOURCE_DIR / "tests" / "schema" / "check_trace_schema.py"


class ScenarioSourceTest(TempDirTestCase):
    def test_metadata_follows_the_schema(self):
        rec = simulate(self.tmp, seed=3, duration_ms=300)
        host_events = ["sched_switch", "sched_migrate_task", "kvm_x86_entry", "kvm_x86_exit", "vmsync_gh_host",
                       "vmsync_hg_host"]
        guest_events = ["sched_switch", "sched_migrate_task", "vmsync_gh_guest", "vmsync_hg_guest"]
        self.assertEqual(len(rec.guests), 2)  # the loop checks each guest
        for trace, required in [(rec.host, host_events)] + [(g, guest_events) for g in rec.guests]:
            with self.subTest(trace=trace):
                proc = subprocess.run([sys.executable, str(CHECKER), trace, "--emitter", "scenario", "--require"]
                                      + required, capture_output=True, text=True, check=False)
                self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_schema_check_catches_a_drift(self):
        rec = simulate(self.tmp, seed=3, duration_ms=100)
        schema = json.loads((SOURCE_DIR / "docs" / "events.json").read_text(encoding="utf-8"))
        for event in schema["events"]:
            if event["name"] == "kvm_x86_exit":
                event["fields"][1]["type"] = "u64"  # exit_reason widened in the schema only
        drifted = self.tmp / "drifted.json"
        drifted.write_text(json.dumps(schema), encoding="utf-8")
        proc = subprocess.run([sys.executable, str(CHECKER), rec.host, "--emitter", "scenario", "--schema",
                               str(drifted)], capture_output=True, text=True, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("exit_reason", proc.stderr)

    def test_traces_look_like_lttng_kernel_traces_with_distinct_clocks(self):
        rec = simulate(self.tmp, seed=4, duration_ms=200, guests=3, vcpus=1)
        self.assertEqual(len(rec.guests), 3)
        uuids = set()
        for trace in [rec.host] + rec.guests:
            meta = babeltrace(["--output-format=ctf-metadata", trace]).stdout
            self.assertIn('domain = "kernel";', meta)
            self.assertIn('tracer_name = "lttng-modules";', meta)
            clock = meta[meta.index("clock {"):]
            uuids.add(clock[clock.index("uuid"):clock.index(";", clock.index("uuid"))])
        self.assertEqual(len(uuids), 4, "every machine has its own clock UUID")

    def test_same_seed_same_trace(self):
        digests = []
        for run, seed in enumerate((11, 11, 12)):
            rec = simulate(self.tmp / str(run), seed=seed, duration_ms=200)
            text = babeltrace([rec.guest(0)]).stdout
            digests.append(hashlib.sha256(text.encode()).hexdigest())
        self.assertEqual(digests[0], digests[1])
        self.assertNotEqual(digests[0], digests[2])

    def test_ground_truth_states_cover_the_run(self):
        rec = simulate(self.tmp, seed=5, duration_ms=400, guests=1, vcpus=2)
        truth = rec.truth()
        self.assertEqual(len(truth["guests"]), 1)
        self.assertEqual(sorted((t["guest"], t["vcpu"]) for t in truth["totals"]), [(0, 0), (0, 1)])
        for totals in truth["totals"]:
            covered = sum(totals[f"{s}_ns"] for s in ("guest", "hypervisor", "preempted", "idle"))
            self.assertEqual(covered, 400_000_000)
        self.assertTrue(truth["intervals"])
        for guest, vcpu, state, start, end in truth["intervals"][:1000]:
            self.assertLess(start, end)
            self.assertIn(state, truth["states"])

    def test_bad_parameters_are_refused_by_name(self):
        for bad, word in [(params(vcpus=0), "vcpus"), (params(gusts=2), "gusts"),
                          (params(corrupt_cnt="often"), "corrupt-cnt"), ("seed=\"x\"", "seed"),
                          (params(guest_drifts_ppm=[1.0]), "guest-drifts-ppm"),
                          # values that would wrap or overflow once converted
                          (params(guests=4294967297), "guests"), (params(duration_ms=99999999999999), "duration-ms"),
                          (params(guest_offsets_s=[1e300, 1.0]), "guest-offsets-s"),
                          (params(max_drift_ppm=float("nan")), "max-drift-ppm"),
                          (params(ground_truth="/etc/hostname/truth.json"), "ground-truth")]:
            with self.subTest(params=bad):
                proc = babeltrace(["run", "-c", "sim:source.vmtrace.scenario", "-p", bad, "-c", "d:sink.utils.dummy",
                                   "--connect", "sim:d"], check=False)
                self.assertNotEqual(proc.returncode, 0)
                self.assertIn(word, proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
