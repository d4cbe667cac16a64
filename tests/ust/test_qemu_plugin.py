#!/usr/bin/env python3
"""The QEMU plugin libvmtrace-mem-qemu.so (ust/qemu-plugin) under qemu-system-x86_64.

The guest is ust/qemu-plugin/testguest: a bare-metal program without paging
(virtual = physical) whose accesses inside its recording window are known
exactly: 4-byte stores every STRIDE bytes of a buffer then one 4-byte load
per page, ROUNDS times, with clock marks before and after the window.  The
plugin's events are recorded by a private lttng-sessiond (run as nobody
when the test runs as root, so the system's root daemon is never involved)
and read back with babeltrace2.

Exit status 77 (skipped) only when qemu-system-x86_64 or the plugin (its
header qemu-plugin.h) is absent.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from lttng_daemon import AS_USER, HIDE_ROOT_SESSIOND, IS_ROOT, SessionDaemon  # noqa: E402

PLUGIN = os.environ.get("VMTRACE_QEMU_PLUGIN", "")
GUEST = os.environ.get("VMTRACE_QEMU_TESTGUEST", "")
SOURCE_DIR = Path(os.environ.get("VMTRACE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
QEMU = shutil.which("qemu-system-x86_64")

BASE = 0x7000000  # the reserved area in the 128 MiB test machine
BUF = 0x400000
PAGE = 4096
# QEMU runs as the private daemon's user, out of sight of a root lttng-sessiond whose sessions
# may enable vmtrace_mem:* (the lab's does): lttng_daemon.HIDE_ROOT_SESSIOND.

# Every access falls in exactly one of these (ust/qemu-plugin/counts.h).
BUCKETS = ["marks", "controls", "outside_window", "filtered", "sampled_out", "lost", "io", "recorded"]


def expected_window_accesses(pages, stride=64, rounds=1):
    """(hpa, size, kind, va) of the guest's window, in program order."""
    one = [(a, 4, 1, a) for a in range(BUF, BUF + pages * PAGE, stride)]
    one += [(a, 4, 0, a) for a in range(BUF, BUF + pages * PAGE, PAGE)]
    return one * rounds


EVENT = re.compile(r"^\[[^\]]+\] \([^)]*\) \S+ vmtrace_mem:(\w+): \{ cpu_id = \d+ \}, \{ (.*) \}$")


def read_trace(path):
    """The trace's vmtrace_mem events in time order as (name, {field: int})."""
    out = subprocess.run(["babeltrace2", str(path)], capture_output=True, text=True, check=True, timeout=300)
    events = []
    for line in out.stdout.splitlines():
        m = EVENT.match(line)
        if not m:
            raise AssertionError(f"unexpected babeltrace2 line: {line}")
        fields = dict(kv.split(" = ", 1) for kv in m.group(2).split(", "))
        events.append((m.group(1), {k: int(v, 0) for k, v in fields.items()}))
    return events


def shared_tmpdir(prefix):
    """A temporary directory nobody (QEMU, the daemon) can write."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o777)
    return d


class QemuPluginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = shared_tmpdir("vmtrace-qemu-plugin-")
        cls.daemon = None

    @classmethod
    def tearDownClass(cls):
        if cls.daemon:
            cls.daemon.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def session_daemon(cls):
        if not (shutil.which("lttng-sessiond") and shutil.which("lttng") and shutil.which("babeltrace2")):
            raise unittest.SkipTest("lttng-tools or babeltrace2 is not installed")
        if cls.daemon is None:
            home = cls.tmp / "lttng-home"
            home.mkdir(mode=0o777)
            home.chmod(0o777)
            cls.daemon = SessionDaemon(home, as_nobody=IS_ROOT)
        return cls.daemon

    def qemu(self, plugin_args, append="", env=None, extra=(), timeout=120):
        """Boots the test guest with the plugin; returns (process, stats dict or None)."""
        stats = Path(tempfile.mktemp(prefix="stats-", suffix=".json", dir=self.tmp))
        args = ",".join([PLUGIN, *plugin_args, f"stats={stats}"])
        cmd = HIDE_ROOT_SESSIOND + AS_USER + [QEMU, "-display", "none", "-no-reboot", "-m", "128", "-kernel", GUEST,
                           "-append", f"base={BASE:#x} {append}", "-plugin", args, *extra]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        data = json.loads(stats.read_text()) if stats.exists() and stats.stat().st_size else None
        return r, data

    def traced(self, name, plugin_args, append="", events="vmtrace_mem:*", extra=()):
        """Runs the guest under a session enabling `events`; returns (process, stats, trace events)."""
        d = self.session_daemon()
        out = self.tmp / f"trace-{name}"
        d.must("create", name, f"--output={out}")
        try:
            for ev in events.split(","):
                d.must("enable-event", "-u", ev)
            d.must("start")
            r, stats = self.qemu(plugin_args, append, env=d.env, extra=extra)
            d.must("stop")
        finally:
            d.lttng("destroy", name)
        return r, stats, read_trace(out) if out.exists() else []

    def check_identity(self, stats):
        self.assertEqual(stats["seen"], sum(stats[b] for b in BUCKETS), stats)

    def test_bad_arguments_stop_qemu(self):
        cases = [
            ("mode=sometimes", "mode=sometimes"),
            ("sync=abc", "sync=abc"),
            ("sync=0x7000001", "sync=0x7000001"),
            ("sync=0xffffffffffffffff", "sync=0xffffffffffffffff"),
            ("sync=-4096", "sync=-4096"),
            ("sample=0", "sample=0"),
            ("sample=x", "sample=x"),
            ("sample=4294967296", "sample=4294967296"),
            ("guest-only=maybe", "guest-only=maybe"),
            ("stats=", "stats="),
            (f"sync=0x7000000,stats={self.tmp}/no/such/dir/s.json", "stats="),
            ("colour=red", "'colour'"),
            ("verbose", "'verbose'"),
            ("mode=window", "sync=BASE"),
            ("sample=2,sample=3", "'sample' given twice"),
        ]
        for arg, named in cases:
            with self.subTest(arg=arg):
                # -machine none: a plugin that loaded would leave QEMU waiting until the timeout.
                cmd = [QEMU, "-machine", "none", "-display", "none", "-plugin", f"{PLUGIN},{arg}"]
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
                self.assertNotEqual(r.returncode, 0)
                lines = [ln for ln in r.stderr.splitlines() if ln.startswith("vmtrace-mem-qemu: ")]
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertIn(named, lines[0])

    def test_window_records_exactly_the_program_accesses(self):
        r, stats, events = self.traced("window", [f"sync={BASE:#x}"], "pages=16 marks=3 after=2")
        self.assertEqual(r.returncode, 0, r.stderr)
        names = [n for n, _ in events]
        self.assertEqual(names.count("vmtrace_mem_window_open"), 1)
        self.assertEqual(names.count("vmtrace_mem_window_close"), 1)
        opened, closed = names.index("vmtrace_mem_window_open"), names.index("vmtrace_mem_window_close")
        accesses = [(f["hpa"], f["size"], f["kind"], f["va"]) for n, f in events if n == "vmtrace_mem_access"]
        # Exactly the window's accesses, in program order, all between its bounds, by vCPU 0.
        self.assertEqual(accesses, expected_window_accesses(16))
        self.assertTrue(all(opened < i < closed for i, n in enumerate(names) if n == "vmtrace_mem_access"))
        self.assertTrue(all(f["cpu"] == 0 for n, f in events if n == "vmtrace_mem_access"))
        self.assertEqual({a[0] // PAGE for a in accesses}, {(BUF // PAGE) + p for p in range(16)})
        # Marks: cnt 0..4 in order, three before the window and two after it.
        marks = [(i, f) for i, (n, f) in enumerate(events) if n == "vmtrace_mem_sync"]
        self.assertEqual([f["cnt"] for _, f in marks], [0, 1, 2, 3, 4])
        self.assertTrue(all(f["hpa"] == BASE and f["cpu"] == 0 for _, f in marks))
        self.assertEqual([i < opened for i, _ in marks], [True] * 3 + [False] * 2)
        self.assertEqual(events[opened][1], {"window": 0})
        self.assertEqual(events[closed][1], {"window": 0, "recorded": len(accesses), "lost": 0})
        self.assertNotIn("vmtrace_mem_lost", names)
        # The counts match the trace.
        self.assertEqual(stats["recorded"], len(accesses))
        self.assertEqual((stats["marks"], stats["controls"], stats["windows"], stats["lost"]), (5, 2, 1, 0))
        self.assertFalse(stats["window_open_at_exit"])
        self.check_identity(stats)
        self.assertGreater(stats["outside_window"], 0)  # firmware, the guest's set-up, the buffer's first write

    def test_repeated_controls_and_marks_past_one_page(self):
        # 4100 marks: offsets wrap past 4095, cnt goes on; opens and closes twice, two rounds.
        r, stats, events = self.traced("twice", [f"sync={BASE:#x}"], "pages=2 rounds=2 twice=1 marks=4100 after=3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([f["cnt"] for n, f in events if n == "vmtrace_mem_sync"], list(range(4103)))
        accesses = [(f["hpa"], f["size"], f["kind"], f["va"]) for n, f in events if n == "vmtrace_mem_access"]
        self.assertEqual(accesses, expected_window_accesses(2, rounds=2))
        self.assertEqual([f for n, f in events if n == "vmtrace_mem_window_close"],
                         [{"window": 0, "recorded": len(accesses), "lost": 0}])
        self.assertEqual((stats["windows"], stats["opens_when_open"], stats["closes_when_closed"],
                          stats["controls"], stats["marks"]), (1, 1, 1, 4, 4103))
        self.check_identity(stats)

    def test_mark_counter_restart(self):
        # After the window the host's counter restarts (its module was reloaded) at 0, then
        # its marks start from 0; a restart control followed by marks from 7 (a mark missed
        # by nobody but stored at a later offset) gives 7.
        for reset, after in ((1, [0, 1, 2]), (8, [7, 8, 9])):
            with self.subTest(reset=reset):
                r, stats, events = self.traced(f"reset{reset}", [f"sync={BASE:#x}"],
                                               f"pages=1 marks=5000 after=3 reset={reset}")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual([f["cnt"] for n, f in events if n == "vmtrace_mem_sync"], list(range(5000)) + after)
                self.assertEqual((stats["mark_resets"], stats["controls"], stats["marks"]), (1, 3, 5003))
                self.check_identity(stats)

    def test_only_one_byte_stores_are_marks(self):
        # The host makes its marks and controls with one-byte stores; a 4-byte store to the
        # marks page is an ordinary access (here outside the window), and the marks go on.
        r, stats = self.qemu([f"sync={BASE:#x}"], "pages=1 marks=3 after=2 wide=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((stats["marks"], stats["controls"]), (5, 2))
        self.check_identity(stats)

    def test_sample_records_one_in_n_exactly(self):
        n = 7
        r, stats, events = self.traced("sample", [f"sync={BASE:#x}", f"sample={n}"], "pages=16")
        self.assertEqual(r.returncode, 0, r.stderr)
        accesses = [(f["hpa"], f["size"], f["kind"], f["va"]) for nm, f in events if nm == "vmtrace_mem_access"]
        everything = expected_window_accesses(16)
        # Deterministic per vCPU: the first of every n eligible accesses.
        self.assertEqual(accesses, everything[::n])
        self.assertEqual(stats["recorded"], len(everything[::n]))
        self.assertEqual(stats["sampled_out"], len(everything) - len(everything[::n]))
        self.check_identity(stats)

    def test_disabled_access_event_is_lost_and_reported(self):
        # The session takes the window, sync and lost events but not the accesses.
        r, stats, events = self.traced(
            "disabled", [f"sync={BASE:#x}"], "pages=16",
            events="vmtrace_mem:vmtrace_mem_window_open,vmtrace_mem:vmtrace_mem_window_close,"
                   "vmtrace_mem:vmtrace_mem_lost,vmtrace_mem:vmtrace_mem_sync")
        self.assertEqual(r.returncode, 0, r.stderr)
        n = len(expected_window_accesses(16))
        self.assertEqual((stats["recorded"], stats["lost"]), (0, n))
        self.assertEqual([f for nm, f in events if nm == "vmtrace_mem_window_close"],
                         [{"window": 0, "recorded": 0, "lost": n}])
        self.assertEqual([f for nm, f in events if nm == "vmtrace_mem_lost"], [{"count": n}])
        self.assertEqual(r.stderr.count("nothing was recorded"), 1, r.stderr)
        self.check_identity(stats)

    def test_no_session_daemon(self):
        home = shared_tmpdir("vmtrace-no-daemon-")
        try:
            env = dict(os.environ, LTTNG_HOME=str(home))
            r, stats = self.qemu([f"sync={BASE:#x}"], "pages=16", env=env)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stats["recorded"], 0)
        self.assertEqual(stats["lost"], len(expected_window_accesses(16)))
        self.assertEqual(stats["marks"], 5)
        self.check_identity(stats)
        said = [ln for ln in r.stderr.splitlines() if "nothing was recorded" in ln]
        self.assertEqual(len(said), 1, r.stderr)
        self.assertIn("no lttng session enabled vmtrace_mem:vmtrace_mem_access", said[0])

    def test_mode_all_without_sync_looks_at_every_access(self):
        r, stats = self.qemu(["mode=all"], "pages=16")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((stats["outside_window"], stats["marks"], stats["controls"], stats["windows"]), (0, 0, 0, 0))
        self.assertEqual(stats["lost"] + stats["io"], stats["seen"])
        self.assertGreater(stats["lost"], len(expected_window_accesses(16)))
        self.check_identity(stats)

    def test_reserved_area_outside_ram_and_window_never_opened(self):
        # The guest's marks and controls go to BASE; the plugin watches 1 GiB, past the 128 MiB of RAM.
        r, stats = self.qemu(["sync=0x40000000"], "pages=4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no store reached the reserved area at 0x40000000", r.stderr)
        self.assertIn("memmap=8K$0x40000000", r.stderr)
        self.assertIn("no window was opened", r.stderr)
        self.assertEqual((stats["windows"], stats["marks"], stats["recorded"]), (0, 0, 0))
        self.check_identity(stats)

    def test_window_left_open_is_closed_at_exit(self):
        r, stats, events = self.traced("open", [f"sync={BASE:#x}"], "pages=1 close=0 after=0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("window 0 was still open at exit", r.stderr)
        self.assertTrue(stats["window_open_at_exit"])
        names = [n for n, _ in events]
        self.assertEqual(names[-1], "vmtrace_mem_window_close")
        # Everything after the open was recorded: the window, then the guest's way to its reset.
        self.assertEqual(events[-1][1]["recorded"], stats["recorded"])
        self.assertGreater(stats["recorded"], len(expected_window_accesses(1)))
        self.check_identity(stats)

    def test_guest_only_records_the_nested_guest_accesses(self):
        # Three entries into a nested SVM guest that stores every 64 bytes of 16 KiB at 0x500000
        # and leaves with VMMCALL; around each VMRUN the host stores to 0x600000 and the VMCB.
        rounds, guest = 3, [(a, 4, 1, a) for a in range(0x500000, 0x504000, 64)]
        for guest_only in ("on", "off"):
            with self.subTest(guest_only=guest_only):
                debug = self.tmp / f"debugcon-{guest_only}.txt"
                r, stats, events = self.traced(
                    f"svm-{guest_only}", [f"sync={BASE:#x}", f"guest-only={guest_only}"], f"svm={rounds}",
                    extra=["-cpu", "qemu64,+svm", "-debugcon", f"file:{debug}"])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("exit=00000081", debug.read_text())  # the last #VMEXIT: VMMCALL
                accesses = [(f["hpa"], f["size"], f["kind"], f["va"]) for n, f in events if n == "vmtrace_mem_access"]
                host = [a for a in accesses if a[0] in (0x600000, 0x600004)]
                self.check_identity(stats)
                if guest_only == "on":
                    self.assertEqual(accesses, guest * rounds)
                    self.assertEqual((stats["vmruns"], stats["guest_exits"], stats["missed_exits"]),
                                     (rounds, rounds, 0))
                    # The host's 3 stores a round and VMRUN's own accesses to the VMCB and host save area.
                    self.assertGreater(stats["filtered"], 3 * rounds)
                    self.assertEqual(stats["recorded"], len(accesses))
                else:
                    # The same run unfiltered: the host's stores are there too.
                    self.assertEqual(len(host), 2 * rounds)
                    self.assertEqual([a for a in accesses if 0x500000 <= a[0] < 0x504000], guest * rounds)
                    self.assertEqual((stats["vmruns"], stats["filtered"]), (0, 0))

    def test_guest_only_warns_of_returns_it_cannot_see(self):
        # The host code after VMRUN runs (and is translated) before the first VMRUN: its
        # callback is never registered, the flag stays set and the later VMRUNs say so.
        rounds = 3
        r, stats = self.qemu([f"sync={BASE:#x}", "guest-only=on"], f"svm={rounds} early=1",
                             extra=["-cpu", "qemu64,+svm"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((stats["vmruns"], stats["guest_exits"], stats["missed_exits"]), (rounds, 0, rounds - 1))
        self.assertIn(f"{rounds - 1} returns from a nested guest were not seen", r.stderr)
        self.check_identity(stats)

    def test_fetch_script_reuses_its_cache(self):
        version = subprocess.run(["dpkg-query", "-W", "-f", "${source:Version}", "qemu-system-x86"],
                                 capture_output=True, text=True, check=True).stdout
        cache = self.tmp / "header-cache"
        here = cache / version.replace(":", "_")
        here.mkdir(parents=True)
        (here / "qemu-plugin.h").write_text("/* cached */\n")
        script = SOURCE_DIR / "scripts" / "fetch-qemu-plugin-header.sh"
        r = subprocess.run([str(script), str(cache)], capture_output=True, text=True, timeout=30, check=False)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, str(here)), r.stderr)
        self.assertEqual((here / "qemu-plugin.h").read_text(), "/* cached */\n")
        r = subprocess.run([str(script), "a", "b"], capture_output=True, text=True, timeout=30, check=False)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    if not QEMU:
        print("skipped: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        sys.exit(77)
    if not PLUGIN or not Path(PLUGIN).exists() or not GUEST:
        print("skipped: the QEMU plugin was not built: qemu-plugin.h is missing "
              "(scripts/fetch-qemu-plugin-header.sh, then reconfigure)")
        sys.exit(77)
    unittest.main(verbosity=2)
