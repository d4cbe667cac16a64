#!/usr/bin/env python3
"""`vmtrace export --trace-compass`: per-machine LTTng kernel traces on the
host's time base that Trace Compass opens as a Virtual Machine experiment.

Every exported trace is read back with babeltrace2 and checked for what
Trace Compass needs (docs/trace-compass.md): one directory per machine,
the CTF env of an LTTng kernel trace, one distinct clock UUID per machine,
the packet context's cpu_id, the events and fields its VM analysis reads,
every event kept, and guest times on the host's time base (each vmsync
message received after it was sent, within the synchronisation bound)."""
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import unittest
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, babeltrace, simulate  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))
LAB_ARCHIVE = SOURCE_DIR / "examples" / "lab-recording" / "recording.tar.xz"
LINE = re.compile(r"^\[(\d+)\.(\d{9})\] (\S+) (\w+): \{ cpu_id = (\d+) \}(?:, \{(.*)\})?$")
# What Trace Compass's kernel and Virtual Machine analyses read (docs/events.json, "trace_compass").
TC_HOST_EVENTS = {"kvm_x86_entry": ["vcpu_id"], "kvm_x86_exit": ["vcpu_id", "exit_reason"],
                  "vmsync_gh_host": ["cnt", "vm_uid"], "vmsync_hg_host": ["cnt", "vm_uid"],
                  "sched_switch": ["prev_tid", "next_tid"]}
TC_GUEST_EVENTS = {"vmsync_gh_guest": ["cnt", "vm_uid"], "vmsync_hg_guest": ["cnt", "vm_uid"],
                   "sched_switch": ["prev_tid", "next_tid"]}
TC_STATEDUMP = {"lttng_statedump_process_state": ["tid", "pid", "ppid", "name"]}
WITHOUT_PID = re.compile(r"^vmtrace export: warning: host `([^`]+)`: (\d+) of its (\d+) vCPU threads? ha(?:s|ve) no "
                         r"process id in the trace: (.*?); no lttng_statedump_process_state or sched_process_fork",
                         re.M)


def vmtrace(*args, env=None):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=900,
                          env=env)


class Trace:
    """One CTF trace read back with babeltrace2: events, env, clock."""

    def __init__(self, path):
        self.path = Path(path)
        self.metadata = babeltrace(["--output-format=ctf-metadata", str(path)]).stdout
        self.env = self.block("env")
        self.clock = self.block("clock")
        self.counts = Counter()
        self.sample = {}             # event name -> payload of its first occurrence
        self.vmsync = defaultdict(dict)  # event name -> {(vm_uid, cnt): time in ns}
        self.cpus = set()
        # Host threads as Trace Compass's VM analysis sees them: the thread on a
        # CPU is the last sched_switch's next_tid there; it runs a vCPU when it
        # records kvm_x86_entry, and vmsync_gh_host ties it to that vm_uid.
        running = {}
        self.vcpu_threads = defaultdict(set)  # tid -> vm_uids
        self.tids_with_pid = set()            # named by lttng_statedump_process_state or sched_process_fork
        out = babeltrace(["--clock-seconds", "--no-delta", str(path)]).stdout
        for line in out.splitlines():
            m = LINE.match(line)
            if m is None:
                raise AssertionError(f"{path}: unexpected line: {line}")
            name, payload = m.group(4), (m.group(6) or "").strip()
            self.counts[name] += 1
            self.sample.setdefault(name, payload)
            cpu = int(m.group(5))
            self.cpus.add(cpu)
            if name == "sched_switch":
                running[cpu] = int(re.search(r"\bnext_tid = (\d+)", payload).group(1))
            elif name in ("kvm_x86_entry", "kvm_entry") and running.get(cpu, 0) > 0:
                self.vcpu_threads.setdefault(running[cpu], set())
            elif name == "vmsync_gh_host" and running.get(cpu, 0) > 0:
                uid = re.search(r"\bvm_uid = (0x[0-9A-F]+|\d+)", payload).group(1)
                self.vcpu_threads[running[cpu]].add(int(uid, 0))
            elif name == "lttng_statedump_process_state":
                self.tids_with_pid.add(int(re.search(r"\btid = (\d+)", payload).group(1)))
            elif name == "sched_process_fork":
                self.tids_with_pid.add(int(re.search(r"\bchild_tid = (\d+)", payload).group(1)))
            if name.startswith("vmsync_"):
                fields = dict(re.findall(r"(\w+) = (0x[0-9A-F]+|\d+)", payload))
                key = (int(fields["vm_uid"], 0), int(fields["cnt"]))
                self.vmsync[name][key] = int(m.group(1)) * 1_000_000_000 + int(m.group(2))

    def block(self, name):
        match = re.search(rf"^{name} \{{(.*?)^\}};", self.metadata, re.S | re.M)
        if match is None:
            return {}
        return {k: v.strip('"') for k, v in re.findall(r"^\s*(\w+) = (\"[^\"]*\"|[^;]*);", match.group(1), re.M)}


class ExportChecks:
    """Checks shared by the simulated and the lab recording."""
    out: Path
    recorded: dict   # output directory name -> recorded trace path
    stats: dict
    extra_args = ()  # ("--rewrite-events",): the per-event path

    def fast(self):
        return self.stats.get("path") == "clock-rewrite"

    @classmethod
    def export(cls, traces, out):
        proc = vmtrace("export", "--trace-compass", *traces, "-o", out, "--stats", out.parent / "stats.json",
                       *cls.extra_args)
        if proc.returncode != 0:
            raise AssertionError(f"vmtrace export failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        cls.proc = proc
        cls.stats = json.loads((out.parent / "stats.json").read_text(encoding="utf-8"))
        cls.exported = {d.name: Trace(d) for d in sorted(out.iterdir()) if d.is_dir()}
        cls.inputs = {name: Trace(path) for name, path in cls.recorded.items()}
        # Every check below loops over these: an export that lost a machine
        # must fail them all, not pass them with nothing to check.
        if sorted(cls.exported) != sorted(cls.recorded):
            raise AssertionError(f"exported {sorted(cls.exported)}, expected {sorted(cls.recorded)}")

    def warned_without_pid(self):
        """{host name: {tid: [VM names]}} from the export's warnings."""
        warned = {}
        for host, count, total, listing in WITHOUT_PID.findall(self.proc.stderr):
            threads = {int(tid): vms.split(", ") for tid, vms in re.findall(r"(\d+) \(([^)]*)\)", listing)}
            self.assertEqual(len(threads), int(count), listing)
            self.assertLessEqual(int(count), int(total))
            warned[host] = threads
        return warned

    def vm_names(self, host, tid):
        by_uid = {int(t.env["vmtrace_vm_uid"], 16): n for n, t in self.exported.items() if n.startswith("vm-")}
        return sorted(by_uid.get(uid, f"vm_uid {uid:#x}") for uid in host.vcpu_threads[tid])

    def guests(self):
        return {n: t for n, t in self.exported.items() if n.startswith("vm-")}

    def test_one_directory_per_machine_and_the_experiment_notes(self):
        self.assertEqual(sorted(p.name for p in self.out.iterdir()), sorted([*self.recorded, "experiment.txt"]))
        for name in self.recorded:
            self.assertTrue((self.out / name / "metadata").is_file(), name)  # a trace directory itself
        notes = (self.out / "experiment.txt").read_text(encoding="utf-8")
        # the names the Trace Compass Incubator gives them (its plugin.properties)
        for text in ("Tools > Add-ons", "Virtual Machine And Container Analysis (Incubator)",
                     "Virtual Machine Experiment (incubator)", "Virtual CPU (incubator)",
                     "Virtual Resources (incubator)"):
            self.assertIn(text, notes)
        self.assertEqual(notes.count("Warning: host `"), len(self.warned_without_pid()))
        for name, trace in self.exported.items():
            self.assertIn(f"{name}/", notes)
            self.assertIn(trace.clock["uuid"], notes)
        self.assertIn(f"{len(self.recorded)} traces in", self.proc.stderr)

    def test_env_of_an_lttng_kernel_trace(self):
        host_name = next(t.env["hostname"] for n, t in self.exported.items() if n.startswith("host-"))
        for name, trace in self.exported.items():
            with self.subTest(trace=name):
                self.assertEqual(trace.env["domain"], "kernel")
                self.assertEqual(trace.env["tracer_name"], "lttng-modules")
                self.assertGreaterEqual(int(trace.env["tracer_major"]), 2)
                self.assertTrue(trace.env["tracer_minor"].isdigit())
                self.assertEqual(trace.env["hostname"], self.inputs[name].env["hostname"])
                self.assertEqual(name, ("host-" if name.startswith("host-") else "vm-") + trace.env["hostname"])
                if name.startswith("vm-"):
                    self.assertEqual(trace.env["vmtrace_time_base"], f"host {host_name}")
                    self.assertEqual({uid for uid, _ in trace.vmsync["vmsync_gh_guest"]},
                                     {int(trace.env["vmtrace_vm_uid"], 16)})
                else:
                    self.assertNotIn("vmtrace_time_base", trace.env)

    def test_each_machine_keeps_its_own_clock_uuid(self):
        uuids = [t.clock["uuid"] for t in self.exported.values()]
        self.assertEqual(len(set(uuids)), len(uuids), uuids)
        for name, trace in self.exported.items():
            self.assertEqual(trace.clock["uuid"], self.inputs[name].clock["uuid"], name)
        host_clock = next(t.clock for n, t in self.exported.items() if n.startswith("host-"))
        for name, trace in self.guests().items():
            if self.fast():
                # The guest's own clock, its transform in freq and offset;
                # never a negative offset_s (Trace Compass drops it).
                self.assertGreater(int(trace.clock["freq"]), 0, name)
                self.assertGreaterEqual(int(trace.clock["offset_s"]), 0, name)
                self.assertNotEqual(trace.clock["freq"], self.inputs[name].clock.get("freq", "1000000000"), name)
            else:  # guests count the host's time
                self.assertEqual((trace.clock.get("offset_s"), trace.clock.get("offset")),
                                 (host_clock.get("offset_s"), host_clock.get("offset")), name)

    def test_packet_context_names_the_cpu_as_lttng_does(self):
        for name, trace in self.exported.items():
            context = re.search(r"packet\.context := struct \{(.*?)\} align", trace.metadata, re.S)
            # LTTng's own metadata (kept by the fast path) names the struct.
            context = (context or re.search(r"struct packet_context \{(.*?)\n\}", trace.metadata, re.S)).group(1)
            self.assertRegex(context, r"[}\s]cpu_id;", name)
            self.assertEqual(trace.cpus, self.inputs[name].cpus, name)

    def test_every_event_is_kept(self):
        for name, trace in self.exported.items():
            self.assertEqual(trace.counts, self.inputs[name].counts, name)
        if not self.fast():  # the fast path re-creates no event: the counts above say it
            for machine in self.stats["machines"]:
                self.assertEqual(machine["events_in"], machine["events_out"], machine["name"])

    def test_events_and_fields_trace_compass_reads(self):
        for name, trace in self.exported.items():
            required = TC_HOST_EVENTS if name.startswith("host-") else TC_GUEST_EVENTS
            for event, fields in required.items():
                with self.subTest(trace=name, event=event):
                    self.assertGreater(trace.counts[event], 0)
                    for field in fields:
                        self.assertRegex(trace.sample[event], rf"(^|, ){field} = ")

    def test_guests_are_on_the_host_time_base(self):
        host = next(t for n, t in self.exported.items() if n.startswith("host-"))
        bounds = {int(m["vm_uid"], 16): m["max_applied_bound_ns"] for m in self.stats["machines"]
                  if m["role"] == "guest"}
        for name, guest in self.guests().items():
            with self.subTest(guest=name):
                uid = int(guest.env["vmtrace_vm_uid"], 16)
                if self.fast():
                    bounds[uid] = int(guest.env["vmtrace_sync_bound_ns"])
                pairs = [(guest.vmsync["vmsync_gh_guest"][k], host.vmsync["vmsync_gh_host"][k])
                         for k in guest.vmsync["vmsync_gh_guest"] if k in host.vmsync["vmsync_gh_host"]]
                pairs += [(host.vmsync["vmsync_hg_host"][k], guest.vmsync["vmsync_hg_guest"][k])
                          for k in guest.vmsync["vmsync_hg_guest"] if k in host.vmsync["vmsync_hg_host"]]
                self.assertGreater(len(pairs), 100)
                late = [(sent, received) for sent, received in pairs if received + bounds[uid] < sent]
                self.assertLessEqual(len(late), self.allowed_late_ratio * len(pairs), late[:5])
                # ... and not just ordered: received within a millisecond of sent
                self.assertLess(sorted(r - s for s, r in pairs)[len(pairs) // 2], 1_000_000)
                # whereas on the guest's own recorded clock they are seconds apart
                recorded = self.inputs[name].vmsync["vmsync_gh_guest"]
                key = next(iter(recorded))
                self.assertGreater(abs(recorded[key] - host.vmsync["vmsync_gh_host"][key]), 10_000_000)

    def test_vcpu_threads_without_a_process_id_are_warned_about(self):
        host_name, host = next((n, t) for n, t in self.inputs.items() if n.startswith("host-"))
        self.assertTrue(host.vcpu_threads, "the host trace has vCPU threads")
        expected = {tid: self.vm_names(host, tid) for tid in host.vcpu_threads if tid not in host.tids_with_pid}
        warned = self.warned_without_pid()
        if expected:
            self.assertEqual(list(warned), [host.env["hostname"]], self.proc.stderr)
            self.assertEqual(warned[host.env["hostname"]], expected)
            match = WITHOUT_PID.search(self.proc.stderr)
            self.assertEqual(int(match.group(3)), len(host.vcpu_threads))
        else:
            self.assertEqual(warned, {}, self.proc.stderr)

    def test_the_export_reads_as_one_experiment(self):
        proc = babeltrace(["-c", "sink.utils.counter", "-p", "step=+0", str(self.out)])
        total = int(re.search(r"(\d+) Event messages", proc.stdout).group(1))
        self.assertEqual(total, sum(sum(t.counts.values()) for t in self.exported.values()))


class ExportSimulatedTest(ExportChecks, unittest.TestCase):
    allowed_late_ratio = 0  # ground truth: every message is received after it was sent

    def test_the_default_is_the_fast_path(self):
        if not self.extra_args:
            self.assertTrue(self.fast())
            self.assertIn("clock rewritten", self.proc.stderr)

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="vmtrace-export-")
        root = Path(cls._tmp.name)
        rec = simulate(root, seed=41, duration_ms=2_000)
        cls.out = root / "tc"
        cls.recorded = {"host-vmtrace-sim-host": rec.host, "vm-vmtrace-sim-guest0": rec.guest(0),
                        "vm-vmtrace-sim-guest1": rec.guest(1)}
        cls.export([rec.root / "vmtrace-sim-host", rec.root / "vmtrace-sim-guest0", rec.root / "vmtrace-sim-guest1"],
                   cls.out)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_simulated_vcpu_threads_have_no_process_id(self):
        # The simulator emits neither lttng_statedump_process_state nor
        # sched_process_fork: every one of its vCPU threads is warned about.
        host = self.inputs["host-vmtrace-sim-host"]
        self.assertEqual(host.tids_with_pid, set())
        self.assertEqual(len(host.vcpu_threads), 4)  # 2 guests x 2 vCPUs
        warned = self.warned_without_pid()["vmtrace-sim-host"]
        self.assertEqual(set(warned), set(host.vcpu_threads))
        self.assertEqual(sorted(v for vms in warned.values() for v in vms),
                         sorted(["vm-vmtrace-sim-guest0"] * 2 + ["vm-vmtrace-sim-guest1"] * 2))

    def test_vm_uids_are_the_ground_truth(self):
        truth = json.loads((Path(self._tmp.name) / "ground-truth.json").read_text(encoding="utf-8"))
        text = json.dumps(truth)
        for name, trace in self.guests().items():
            self.assertIn(str(int(trace.env["vmtrace_vm_uid"], 16)), text, name)


class ExportSimulatedPerEventTest(ExportSimulatedTest):
    extra_args = ("--rewrite-events",)

    def test_the_paths_differ(self):
        self.assertFalse(self.fast())


@unittest.skipUnless(LAB_ARCHIVE.exists(), "no lab recording")
class ExportLabRecordingTest(ExportChecks, unittest.TestCase):
    # Under TCG a few handshakes are rejected outliers (docs/clock-sync.md).
    allowed_late_ratio = 0.01

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="vmtrace-export-lab-")
        root = Path(cls._tmp.name)
        with tarfile.open(LAB_ARCHIVE) as archive:
            archive.extractall(root)
        lab = root / "recording"
        cls.vm_uids = {g: int((lab / g / "vm_uid").read_text().strip()) for g in ("l2a", "l2b")}
        trace = {m: str(next((lab / m / "trace").glob("**/metadata")).parent) for m in ("l1", "l2a", "l2b")}
        cls.out = root / "tc"
        cls.recorded = {"host-l1": trace["l1"], "vm-l2a": trace["l2a"], "vm-l2b": trace["l2b"]}
        cls.export([lab / "l1" / "trace", lab / "l2a" / "trace", lab / "l2b" / "trace"], cls.out)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_vm_uids_are_the_recorded_ones(self):
        for guest, uid in self.vm_uids.items():
            self.assertEqual(int(self.exported[f"vm-{guest}"].env["vmtrace_vm_uid"], 16), uid)

    def test_only_the_vm_started_while_tracing_lacks_process_ids(self):
        # l2a ran before the host session started: the statedump names its
        # vCPU threads with QEMU's process id.  l2b was started while tracing
        # and the recording has no sched_process_fork: its vCPU threads have
        # no process id, and only they are warned about.
        host = self.inputs["host-l1"]
        by_vm = defaultdict(set)
        for tid in host.vcpu_threads:
            for vm in self.vm_names(host, tid):
                by_vm[vm].add(tid)
        self.assertEqual(sorted(by_vm), ["vm-l2a", "vm-l2b"])
        self.assertEqual(len(by_vm["vm-l2a"]), 2)
        self.assertEqual(len(by_vm["vm-l2b"]), 2)
        self.assertTrue(by_vm["vm-l2a"] <= host.tids_with_pid)
        self.assertEqual(host.counts["sched_process_fork"], 0)
        warned = self.warned_without_pid()["l1"]
        self.assertEqual(set(warned), by_vm["vm-l2b"])
        self.assertEqual({vm for vms in warned.values() for vm in vms}, {"vm-l2b"})
        notes = " ".join((self.out / "experiment.txt").read_text(encoding="utf-8").split())
        self.assertIn("Warning: host `l1`: 2 of its 4 vCPU threads have no process id in the trace: "
                      f"{', '.join(f'{tid} (vm-l2b)' for tid in sorted(warned))};", notes)

    def test_statedump_for_the_kernel_analysis(self):
        for name, trace in self.exported.items():
            for event, fields in TC_STATEDUMP.items():
                with self.subTest(trace=name, event=event):
                    self.assertGreater(trace.counts[event], 0)
                    for field in fields:
                        self.assertRegex(trace.sample[event], rf"(^|, ){field} = ")


class ExportLabRecordingPerEventTest(ExportLabRecordingTest):
    extra_args = ("--verify",)

    def test_the_paths_differ(self):
        self.assertFalse(self.fast())


class ExportBadInputTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="vmtrace-export-bad-")
        cls.rec = simulate(Path(cls._shared.name), seed=43, duration_ms=1_500)

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def assert_one_line(self, proc, status, message):
        self.assertEqual(proc.returncode, status, proc.stderr)
        self.assertIn(message, proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)

    def test_usage_errors_exit_2_with_one_line(self):
        host, guest = self.rec.host, self.rec.guest(0)
        cases = [(["export", host, guest, "-o", self.tmp / "o"], "--trace-compass"),
                 (["export", "--trace-compass", host, "-o", self.tmp / "o"], "a host trace and at least one guest"),
                 (["export", "--trace-compass", host, guest], "needs an output directory"),
                 (["export", "--trace-compass", host, self.tmp / "missing", "-o", self.tmp / "o"], "not a directory"),
                 (["export", "--trace-compass", host, self.tmp, "-o", self.tmp / "o"], "no CTF trace in it")]
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_one_line(vmtrace(*args), 2, message)
                self.assertFalse((self.tmp / "o").exists())

    def test_guest_without_sync_events_exits_1_and_leaves_nothing(self):
        rec = simulate(self.tmp / "nosync", seed=44, guest_sync=False, duration_ms=1_500)
        out = self.tmp / "o"
        proc = vmtrace("export", "--trace-compass", rec.host, rec.guest(0), "-o", out, "-q")
        self.assert_one_line(proc, 1, "guest `vmtrace-sim-guest0` was not placed on the host's time base")
        self.assertIn("no vmsync events", proc.stderr)
        self.assertFalse(out.exists())

    def test_non_empty_output_needs_force(self):
        out = self.tmp / "o"
        out.mkdir()
        (out / "vm-stale").mkdir()
        (out / "notes.txt").write_text("mine\n")
        proc = vmtrace("export", "--trace-compass", self.rec.host, self.rec.guest(0), "-o", out, "-q")
        self.assert_one_line(proc, 2, "not empty (--force")
        self.assertEqual(sorted(p.name for p in out.iterdir()), ["notes.txt", "vm-stale"])
        # --force replaces only an earlier export (its experiment.txt), and whole: nothing stale stays.
        proc = vmtrace("export", "--trace-compass", self.rec.host, self.rec.guest(0), "-o", out, "-q", "--force")
        self.assert_one_line(proc, 2, "not an earlier output")
        self.assertEqual(sorted(p.name for p in out.iterdir()), ["notes.txt", "vm-stale"])
        (out / "experiment.txt").write_text("an earlier export\n")
        proc = vmtrace("export", "--trace-compass", self.rec.host, self.rec.guest(0), "-o", out, "-q", "--force")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        self.assertEqual(sorted(p.name for p in out.iterdir()),
                         ["experiment.txt", "host-vmtrace-sim-host", "vm-vmtrace-sim-guest0"])

    def test_failed_run_into_an_existing_directory_keeps_it(self):
        out = self.tmp / "o"
        out.mkdir()
        proc = vmtrace("export", "--trace-compass", self.rec.guest(0), self.rec.guest(1), "-o", out, "-q")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("no input trace is a KVM host", proc.stderr)
        self.assertEqual(list(out.iterdir()), [])

    def test_missing_plugin_exits_3(self):
        env = dict(os.environ, VMTRACE_PLUGIN_DIR=str(self.tmp / "nowhere"))
        proc = vmtrace("export", "--trace-compass", self.rec.host, self.rec.guest(0), "-o", self.tmp / "o", env=env)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertIn("cannot find the babeltrace2 plugin `vmtrace`", proc.stderr)
        self.assertFalse((self.tmp / "o").exists())

    def test_help(self):
        proc = vmtrace("export", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--trace-compass", proc.stdout)
        self.assertIn("export", vmtrace("--help").stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
