#!/usr/bin/env python3
"""filter.vmtrace.sync and the memory tracer: source.vmtrace.scenario's
memory trace (its own drifting clock, memsync marks) -> filter.vmtrace.sync
-> sink.ctf.fs.  The tracer's trace must come out on the host's time base:
its vmtrace_mem_sync marks between the host's clock reads of the same cnt,
every event within the reported bound of the ground truth, the bound in its
environment; and bad input must give a clear error or warning naming the
trace and the event."""
import re
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from sync_error import guest_errors  # noqa: E402
from vmtrace_test import TempDirTestCase, machine_stats, simulate, synchronize  # noqa: E402

TRACER = "vmtrace-sim-memtracer"
# Longer than the prefetch (2 s), so that the bound written into the
# environment is known before the last marks are read; few accesses keep it
# small.
MEMORY = dict(memory=True, duration_ms=5_000, memory_accesses_per_us=0.05, ground_truth_intervals=False)
SHORT = dict(memory=True, duration_ms=1_000, memory_accesses_per_us=0.02, ground_truth_intervals=False)

EVENT = re.compile(r"^\[(\d+)\.(\d{9})\] \S+ (\w+): \{ cpu_id = \d+ \}, \{ cnt = (\d+), hpa = (0x[0-9A-Fa-f]+)")


def tracer_trace(rec):
    """The memory tracer's trace directory of a simulated recording."""
    found = [p.parent for p in (rec.root / TRACER).rglob("metadata")]
    if len(found) != 1:
        raise AssertionError(f"expected one trace of {TRACER} under {rec.root}, found {found}")
    return found[0]


def synced_trace(out, machine):
    found = [p.parent for p in (out / "synchronized" / machine).rglob("metadata")]
    if len(found) != 1:
        raise AssertionError(f"expected one synchronised trace of {machine}, found {found}")
    return found[0]


def environment(trace_dir):
    """The env block of a CTF 1.8 text metadata file: {name: int or str}."""
    text = (Path(trace_dir) / "metadata").read_text(encoding="utf-8")
    block = re.search(r"^env \{(.*?)^\};", text, re.S | re.M)
    if block is None:
        raise AssertionError(f"no env block in {trace_dir}/metadata")
    env = {}
    for name, value in re.findall(r"^\s*(\w+) = (.*);$", block.group(1), re.M):
        env[name] = value[1:-1] if value.startswith('"') else int(value)
    return env


def sync_marks(trace_dir, names):
    """{(event name, cnt): (ns from origin, hpa)} of the memsync events."""
    proc = subprocess.run(["babeltrace2", "--clock-seconds", "--no-delta", str(trace_dir)], check=True,
                          capture_output=True, text=True)
    marks = {}
    for line in proc.stdout.splitlines():
        if not any(name in line for name in names):
            continue
        m = EVENT.match(line)
        if m is None or m.group(3) not in names:
            continue
        ns = int(m.group(1)) * 1_000_000_000 + int(m.group(2))
        marks[(m.group(3), int(m.group(4)))] = (ns, int(m.group(5), 16))
    return marks


def messages(proc):
    """stderr with babeltrace2's line wrapping of error causes undone."""
    return " ".join(proc.stderr.split())


def rename_event(trace_dir, old, new):
    """Renames an event class in a trace's text metadata (the streams keep
    their ids, so the events are read under the new name)."""
    metadata = Path(trace_dir) / "metadata"
    text = metadata.read_text(encoding="utf-8")
    renamed = text.replace(f'name = "{old}";', f'name = "{new}";')
    if renamed == text:
        raise AssertionError(f"{metadata} declares no event {old}")
    metadata.write_text(renamed, encoding="utf-8")


class SyncMemoryTracerTest(TempDirTestCase):
    def test_tracer_is_put_on_the_host_time_base_within_its_bound(self):
        for case in [dict(seed=11), dict(seed=12, memory_tracer_drift_ppm=-150.0, memory_tracer_offset_s=30.0)]:
            with self.subTest(**case):
                out = self.tmp / f"seed{case['seed']}"
                rec = simulate(out, **MEMORY, **case)
                tracer = tracer_trace(rec)
                proc, stats = synchronize([rec.host] + rec.guests + [str(tracer)], out)
                truth = rec.truth()["tracer"]
                m = machine_stats(stats, TRACER)
                self.assertEqual((m["role"], m["mode"], m["quality"]), ("memory tracer", "synchronized", "accurate"))
                self.assertEqual(m["events_in"], m["events_out"])
                self.assertGreater(m["events_in"], 100_000)
                self.assertGreaterEqual(m["matches"]["guest_to_host"], 400)  # a mark per 10 ms
                self.assertGreaterEqual(m["matches"]["host_to_guest"], 400)
                self.assertEqual(m["anomalies"]["rejected"] + m["anomalies"]["duplicate_cnt"], 0, m["anomalies"])
                self.assertEqual(m["displaced_events"], 0)
                self.assertIn(f"memory tracer {TRACER} (hpa {m['hpa']}): quality accurate", proc.stderr)

                # The environment: the bound (an integer), the page, the base.
                synced = synced_trace(out, TRACER)
                env = environment(synced)
                self.assertEqual(env["vmtrace_time_base"], "host vmtrace-sim-host")
                self.assertEqual(int(env["vmtrace_memsync_hpa"], 16), truth["memsync_page"])
                self.assertNotIn("vmtrace_vm_uid", env)
                bound = env["vmtrace_sync_bound_ns"]
                self.assertIsInstance(bound, int)
                self.assertEqual(bound, m["sync_bound_env_ns"])
                self.assertGreater(bound, 0)
                for guest in rec.truth()["guests"]:
                    genv = environment(synced_trace(out, guest["hostname"]))
                    self.assertEqual(genv["vmtrace_sync_bound_ns"],
                                     machine_stats(stats, guest["hostname"])["sync_bound_env_ns"])
                    self.assertIn("vmtrace_vm_uid", genv)

                # Every mark on the host base lies between the host's clock
                # reads around its store, within the bound.
                host_marks = sync_marks(rec.host, {"vmtrace_memsync_begin", "vmtrace_memsync_end"})
                tracer_marks = sync_marks(synced, {"vmtrace_mem_sync"})
                self.assertEqual(len(tracer_marks), m["matches"]["guest_to_host"])
                worst_outside = -(10**18)
                for (_, cnt), (t, hpa) in tracer_marks.items():
                    begin, begin_hpa = host_marks[("vmtrace_memsync_begin", cnt)]
                    end, _ = host_marks[("vmtrace_memsync_end", cnt)]
                    self.assertEqual(hpa, begin_hpa)
                    worst_outside = max(worst_outside, begin - t, t - end)
                    self.assertGreaterEqual(t, begin - bound, f"cnt {cnt}")
                    self.assertLessEqual(t, end + bound, f"cnt {cnt}")

                # Every event (accesses, marks, lost records) within the bound
                # of its true host time.
                self.assertEqual(truth["transform"]["step_ns"], 0)
                count, worst, mean = guest_errors(truth["transform"], str(tracer), str(synced))
                self.assertEqual(count, m["events_out"])
                print(f"  seed {case['seed']}: tracer drift {truth['transform']['drift_ppb'] / 1000:+.1f} ppm: "
                      f"{count} events, max error {worst:.0f} ns, mean {mean:.1f} ns; bound in env {bound} ns, "
                      f"applied {m['max_applied_bound_ns']} ns, final {m['accuracy_ns']} ns; marks outside their "
                      f"bracket by at most {worst_outside} ns", file=sys.stderr)
                self.assertLessEqual(worst, m["max_applied_bound_ns"])
                # The bound over the events that are no marks (what the
                # isolation reads) is one of those maxima.
                self.assertGreaterEqual(m["max_applied_bound_data_ns"], 0)
                self.assertLessEqual(m["max_applied_bound_data_ns"], m["max_applied_bound_ns"])
                self.assertLessEqual(worst, bound)
                true_drift = 1e6 * (1e9 / (1e9 + truth["transform"]["drift_ppb"]) - 1)
                self.assertAlmostEqual(m["transform"]["drift_ppm"], true_drift, delta=0.5)

    def test_tracer_marks_without_host_memsync_events_fail_naming_trace_and_events(self):
        # The host's memsync module not loaded: the tracer still sees stores
        # to its page (memory-sync=no), the host logs none.
        rec = simulate(self.tmp, seed=13, memory_sync=False, **SHORT)
        proc, stats = synchronize([rec.host] + rec.guests + [str(tracer_trace(rec))], self.tmp, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
        self.assertIn(f"trace `{TRACER}` (from `in3`) (memory tracer, hpa 0x7ff0000): its vmtrace_mem_sync marks have "
                      "no usable counterpart in the host trace", messages(proc))
        self.assertIn("0 vmtrace_memsync_begin/end events of that page: the host stored no mark there", messages(proc))
        m = machine_stats(stats, TRACER)
        self.assertEqual((m["mode"], m["quality"]), ("unchanged", "incomplete"))
        self.assertEqual(m["events_in"], m["events_out"])

    def test_tracer_without_marks_passes_through_with_warnings(self):
        rec = simulate(self.tmp, seed=14, **SHORT)
        tracer = tracer_trace(rec)
        rename_event(tracer, "vmtrace_mem_sync", "vmtrace_mem_synx")
        proc, stats = synchronize([rec.host] + rec.guests + [str(tracer)], self.tmp)
        self.assertIn(f"trace `{TRACER}` (from `in3`) (memory tracer) has no vmtrace_mem_sync events: passed "
                      "through unchanged", messages(proc))
        self.assertIn("memsync events (vmtrace_memsync_begin/end) of the page at hpa 0x7ff0000 but no input trace is "
                      "the memory tracer", messages(proc))
        m = machine_stats(stats, TRACER)
        self.assertEqual((m["role"], m["mode"], m["quality"]), ("memory tracer", "unchanged", "absent"))
        self.assertEqual(len(stats["memsync_hpas_without_tracer_trace"]), 1)
        self.assertNotIn("vmtrace_time_base", environment(synced_trace(self.tmp, TRACER)))

    def test_two_tracers_on_one_page_are_refused(self):
        rec = simulate(self.tmp, seed=15, **SHORT)
        copy = self.tmp / "second-tracer"
        shutil.copytree(tracer_trace(rec), copy)
        proc, _ = synchronize([rec.host, str(tracer_trace(rec)), str(copy)], self.tmp, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
        self.assertRegex(messages(proc), rf"trace `{TRACER}( #2)?` \(from `in[12]`\) and trace `{TRACER}( #2)?` "
                                         r"\(from `in[12]`\) both record vmtrace_mem_sync marks of the reserved page "
                                         r"at hpa 0x7ff0000")

    def test_memsync_events_in_the_wrong_trace_are_refused(self):
        rec = simulate(self.tmp, seed=16, **SHORT)
        intact = self.tmp / "intact-tracer"
        shutil.copytree(tracer_trace(rec), intact)
        # A tracer whose marks are recorded as the host's clock read.
        tracer = tracer_trace(rec)
        rename_event(tracer, "vmtrace_mem_sync", "vmtrace_memsync_end")
        proc, _ = synchronize([rec.host] + rec.guests + [str(tracer)], self.tmp / "a", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
        self.assertRegex(messages(proc), rf"trace `{TRACER}` \(from `in3`\) \(memory tracer\) records "
                                      r"vmtrace_memsync_end at \d+ ns \(cnt \d+, hpa 0x7ff0000\), which only the host")
        # The tracer named as the host: its marks are not a host's.
        proc, _ = synchronize([str(intact)] + rec.guests, self.tmp / "b", check=False, host=TRACER)
        self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
        self.assertRegex(messages(proc), rf"trace `{TRACER}` \(from `in0`\) \(host\) records vmtrace_mem_sync at \d+ "
                                      r"ns \(cnt \d+, hpa 0x7ff0000\), which only a memory tracer records")


if __name__ == "__main__":
    unittest.main(verbosity=2)
