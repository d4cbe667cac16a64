#!/usr/bin/env python3
"""filter.vmtrace.isolate in a plain babeltrace2 graph: the simulator's
machines and memory tracer -> filter.vmtrace.sync -> the isolation filter
-> sink.ctf.fs, in one graph, as a user would write it."""
import json
import re
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "schema"))
from check_trace_schema import parse_metadata  # noqa: E402
from vmtrace_test import SOURCE_DIR, TempDirTestCase, babeltrace, params  # noqa: E402


def isolate_graph(out, report, scenario, isolate=None):
    return ["run", "-c", "sim:source.vmtrace.scenario", "-p", params(**scenario),
            "-c", "sync:filter.vmtrace.sync", "-p", params(quiet=True),
            "-c", "iso:filter.vmtrace.isolate", "-p", params(report_dir=str(report), **(isolate or {})),
            "-c", "out:sink.ctf.fs", "-p", params(path=str(out), quiet=True),
            "-x", "sim:sync", "-x", "sync:iso", "-x", "iso:out"]


class IsolateFilterGraphTest(TempDirTestCase):
    def test_one_graph_from_simulation_to_isolated_traces(self):
        out, report = self.tmp / "out", self.tmp / "report"
        babeltrace(isolate_graph(out, report, dict(seed=6, duration_ms=100, memory=True,
                                                   ground_truth=str(self.tmp / "truth.json"))))
        result = json.loads((report / "isolation.json").read_text())
        self.assertEqual(result["records_in"], result["records_out"])
        truth = json.loads((self.tmp / "truth.json").read_text())["memory"]
        self.assertEqual(result["records_in"], truth["written"])
        schema = json.loads((SOURCE_DIR / "docs" / "events.json").read_text())
        wanted = next(e for e in schema["events"] if e["name"] == "vmtrace_isolated_access")
        fields = [(f["name"], f["type"], f.get("base", 10)) for f in wanted["fields"]]
        for name, count in result["outputs"].items():
            with self.subTest(output=name):
                meta = babeltrace(["--output-format=ctf-metadata", str(out / name)]).stdout
                events, env = parse_metadata(meta)
                self.assertEqual(list(events), ["vmtrace_isolated_access"])
                self.assertEqual(events["vmtrace_isolated_access"], fields, "the output drifted from the schema")
                self.assertEqual(env.get("tracer_name"), "vmtrace-isolate")
                lines = babeltrace([str(out / name)]).stdout.splitlines()
                self.assertEqual(len(lines), count)

    def test_passes_the_tracers_va_through_untouched(self):
        # The simulator's va is the true guest-virtual address: every record
        # the join attributes to a guest process must carry a gva equal to it
        # (the join never reads va), and the host's records keep theirs.
        out, report = self.tmp / "out", self.tmp / "report"
        babeltrace(isolate_graph(out, report, dict(seed=11, duration_ms=100, memory=True)))
        field = re.compile(r"(\w+) = (0x[0-9A-Fa-f]+|-?\d+|\"[^\"]*\")")
        guest = mismatched = with_va = 0
        for name in json.loads((report / "isolation.json").read_text())["outputs"]:
            for line in babeltrace([str(out / name)]).stdout.splitlines():
                f = dict(field.findall(line))
                va = int(f["va"], 0)
                with_va += va != 0
                if f["attribution"] == '"guest"':
                    guest += 1
                    mismatched += int(f["gva"], 0) != va
        self.assertGreater(guest, 1000)
        self.assertGreater(with_va, guest)
        self.assertEqual(mismatched, 0)
        # isolation.json measures the join against the same addresses.
        check = json.loads((report / "isolation.json").read_text())["va_check"]
        self.assertEqual(check["records_with_va"], with_va)
        self.assertEqual(check["guest_attributed_user_va"] + check["guest_attributed_kernel_va"], guest)
        self.assertEqual(check["gva_equals_va"], guest - mismatched)
        self.assertEqual(check["precision"], 1.0)
        decided = (check["user_va_records"] - check["user_va_by_attribution"]["ambiguous"] -
                   check["user_va_by_attribution"]["guest-untraced"])
        self.assertAlmostEqual(check["recall_outside_ambiguous"], check["gva_equals_va"] / decided)
        # Per VM: every guest attribution names its VM, so the VMs' counts
        # add up to the whole's.
        by_vm = check["by_vm"]
        self.assertGreaterEqual(len(by_vm), 2)
        self.assertEqual(sum(v["guest_attributed_user_va"] for v in by_vm.values()), check["guest_attributed_user_va"])
        self.assertEqual(sum(v["gva_equals_va"] for v in by_vm.values()), check["gva_equals_va"])
        self.assertLessEqual(sum(v["records_with_va"] for v in by_vm.values()), check["records_with_va"])

    def test_sync_bounds_replace_the_announced_bound(self):
        # A bound given for the memory tracer replaces the one its trace
        # announces when tighter (never when wider): the join then decides
        # accesses it called ambiguous.
        results = {}
        for bounds in ([], ["vmtrace-sim-memtracer=50"], ["vmtrace-sim-memtracer=100000000"]):
            report = self.tmp / f"r{len(results)}"
            babeltrace(isolate_graph(self.tmp / f"o{len(results)}", report, dict(seed=4, duration_ms=60, memory=True),
                                     dict(sync_bounds=bounds) if bounds else None))
            results[tuple(bounds)] = json.loads((report / "isolation.json").read_text())
        announced = results[()]["memory_trace"]["sync_bound_ns"]
        self.assertGreater(announced, 50)
        tight = results[("vmtrace-sim-memtracer=50",)]
        self.assertEqual(tight["memory_trace"]["sync_bound_ns"], 50)
        self.assertLess(tight["by_attribution"]["ambiguous"], results[()]["by_attribution"]["ambiguous"])
        self.assertEqual(results[("vmtrace-sim-memtracer=100000000",)]["memory_trace"]["sync_bound_ns"], announced)

    def test_refuses_bad_parameters_naming_them(self):
        for bad, name in ((dict(bin_ms=0), "bin-ms"), (dict(packet_events=0), "packet-events"),
                          (dict(default_bound_ns=-5), "default-bound-ns"), (dict(colour="red"), "colour"),
                          (dict(memory_truth=str(self.tmp / "missing.bin")), "missing.bin"),
                          (dict(sync_bounds=["vmtrace-sim-memtracer"]), "vmtrace-sim-memtracer"),
                          (dict(sync_bounds=["vmtrace-sim-memtracer=-3"]), "sync-bounds"),
                          (dict(sync_bounds="vmtrace-sim-memtracer=3"), "sync-bounds")):
            with self.subTest(parameter=name):
                proc = babeltrace(isolate_graph(self.tmp / "o", self.tmp / "r", dict(seed=1, duration_ms=10,
                                                                                        memory=True), bad),
                                  check=False)
                self.assertNotEqual(proc.returncode, 0)
                self.assertIn(name, proc.stderr)

    def test_a_graph_without_memory_trace_fails(self):
        proc = babeltrace(isolate_graph(self.tmp / "o", self.tmp / "r", dict(seed=1, duration_ms=100)), check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("no memory trace", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
