#!/usr/bin/env python3
"""`vmtrace record host|guest`: the lttng commands it prints against the
event schema, and the real liblttng-ctl path against private session
daemons: no daemon, a non-root daemon, a root daemon without a kernel
tracer.  A failed setup must leave no session behind."""
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from lttng_daemon import NOBODY, SessionDaemon  # noqa: E402
from vmtrace_test import SOURCE_DIR, TempDirTestCase  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))
IS_ROOT = os.geteuid() == 0


def vmtrace(*args, env=None, as_nobody=False):
    cmd = [VMTRACE, *map(str, args)]
    if as_nobody:
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=env)


def one_line(test, proc):
    lines = proc.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, proc.stderr)
    test.assertNotIn("Traceback", proc.stderr)
    return lines[0]


def schema_events(side):
    """The kernel events the schema says are recorded on `side` by LTTng's or that side's vmtrace module."""
    with open(SOURCE_DIR / "docs" / "events.json", encoding="utf-8") as f:
        schema = json.load(f)
    return [e["name"] for e in schema["events"]
            if e["domain"] == "kernel" and side in e["machines"]
            and ({"lttng-modules", f"kmod-{side}"} & set(e["emitters"]))]


def fake_tracepoints_env(env, side):
    """`env` with tests/correlator/fake_tracepoints.c preloaded, offering every event of `side`."""
    shim = os.environ.get("VMTRACE_TEST_FAKE_TRACEPOINTS")
    if not shim:
        raise unittest.SkipTest("VMTRACE_TEST_FAKE_TRACEPOINTS is not set (run through ctest)")
    dry = vmtrace("record", side, "--dry-run").stdout.splitlines()
    # Every channel's events (the main channel's and the vmsync channel's).
    events = ",".join(shlex.split(line)[-1] for line in dry if line.startswith("lttng enable-event "))
    # A sanitizer build wants its runtime first among the preloaded libraries.
    asan = ",".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"]))
    return dict(env, LD_PRELOAD=shim, VMTRACE_TEST_OFFERED_EVENTS=events, ASAN_OPTIONS=asan)


def root_sessiond_running():
    return subprocess.run(["lttng", "list"], capture_output=True, check=False).returncode == 0


class RecordDryRunTest(TempDirTestCase):
    def dry_run(self, side, *args):
        proc = vmtrace("record", side, "--dry-run", *args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        return proc.stdout.splitlines()

    def test_dry_run_prints_the_commands_and_the_schemas_events(self):
        for side, subbuf, num in (("host", "2M", 8), ("guest", "1M", 4)):
            with self.subTest(side=side):
                lines = self.dry_run(side)
                session = f"vmtrace-{side}"
                self.assertEqual(lines[0], f"lttng create {session}")
                self.assertEqual(lines[1], f"lttng enable-channel --kernel --session={session} "
                                           f"--subbuf-size={subbuf} --num-subbuf={num} vmtrace")
                prefix = f"lttng enable-event --kernel --session={session} --channel=vmtrace '"
                self.assertTrue(lines[2].startswith(prefix) and lines[2].endswith("'"), lines[2])
                enabled = lines[2][len(prefix):-1].split(",")
                self.assertEqual(lines[3], f"lttng add-context --kernel --session={session} --channel=vmtrace "
                                           "--type=tid")
                # The vmsync channel: the handshakes and VM identity events alone.
                self.assertEqual(lines[4], f"lttng enable-channel --kernel --session={session} "
                                           "--subbuf-size=256k --num-subbuf=4 vmsync")
                prefix = f"lttng enable-event --kernel --session={session} --channel=vmsync "
                self.assertTrue(lines[5].startswith(prefix), lines[5])
                sync_enabled = lines[5][len(prefix):].split(",")
                self.assertTrue(sync_enabled)
                for name in sync_enabled:
                    self.assertTrue(name.startswith("vmsync_") or name.startswith("kvm_vm_"), name)
                self.assertEqual(lines[6], f"lttng add-context --kernel --session={session} --channel=vmsync "
                                           "--type=tid")
                self.assertEqual(len(lines), 7, lines)  # not started without --start
                self.assertFalse(set(enabled) & set(sync_enabled))
                self.assertFalse([n for n in enabled if n.startswith("vmsync_")])
                # --single-channel: the same events, all in the main channel.
                single = self.dry_run(side, "--single-channel")
                self.assertEqual(len(single), 4, single)
                self.assertEqual(sorted(single[2].split("--channel=vmtrace ")[1].strip("'").split(",")),
                                 sorted(enabled + sync_enabled))
                enabled = enabled + sync_enabled

                # Exactly the schema's events for that side: each one enabled, nothing else.
                expected = schema_events(side)
                self.assertIn("sched_switch", expected)
                self.assertIn("sched_migrate_task", expected)
                for name in expected:
                    self.assertTrue(any(fnmatch.fnmatchcase(name, pattern) for pattern in enabled),
                                    f"{name} (docs/events.json, {side}) is not enabled by {enabled}")
                for pattern in enabled:
                    self.assertTrue(any(fnmatch.fnmatchcase(name, pattern) for name in expected),
                                    f"{pattern} matches no {side} event of docs/events.json")
                self.assertEqual(len(enabled), len(set(enabled)))
                # LTTng's statedump, whole (start and end bracket it): the only wildcard.
                self.assertEqual([p for p in enabled if "*" in p], ["lttng_statedump_*"])
                other_side = "guest" if side == "host" else "host"
                only_other = set(schema_events(other_side)) - set(expected)
                self.assertTrue(only_other)
                self.assertFalse(only_other & set(enabled))

    def test_dry_run_options_and_quoting(self):
        out = self.tmp / "my traces"
        lines = self.dry_run("guest", "--session", "vm1", "-o", out, "--subbuf-size", "512k", "--num-subbuf", "16",
                             "--context", "tid", "--context", "procname", "--start", "--channel", "ch")
        self.assertEqual(lines[0], f"lttng create vm1 '--output={out}'")
        self.assertEqual(lines[1], "lttng enable-channel --kernel --session=vm1 --subbuf-size=512k --num-subbuf=16 ch")
        self.assertEqual(lines[3], "lttng add-context --kernel --session=vm1 --channel=ch --type=tid --type=procname")
        self.assertEqual(lines[4], "lttng enable-channel --kernel --session=vm1 --subbuf-size=256k --num-subbuf=4 "
                                   "vmsync")
        self.assertEqual(lines[6], "lttng add-context --kernel --session=vm1 --channel=vmsync --type=tid "
                                   "--type=procname")
        self.assertEqual(lines[7], "lttng start vm1")
        lines = self.dry_run("host", "--live", "--context", "none")
        self.assertEqual(lines[0], "lttng create vmtrace-host --live=1000000 --set-url=net://127.0.0.1")
        self.assertEqual(len(lines), 5)
        # The main channel cannot take the vmsync channel's name.
        proc = vmtrace("record", "host", "--dry-run", "--channel", "vmsync")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("vmsync channel's name", proc.stderr)
        proc = vmtrace("record", "memory", "--dry-run", "--single-channel")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--single-channel is for host and guest", proc.stderr)
        lines = self.dry_run("host", "--url", "net://relay.example:5342:5343", "--live", "--live-timer-us", "200000")
        self.assertEqual(lines[0], "lttng create vmtrace-host --live=200000 --set-url=net://relay.example:5342:5343")
        # A guest streaming to its host's relay daemon: --relayd is --url's other name.
        lines = self.dry_run("guest", "--live", "--relayd", "net://192.0.2.1")
        self.assertEqual(lines[0], "lttng create vmtrace-guest --live=1000000 --set-url=net://192.0.2.1")
        # The printed commands are shell words: the path with a space stays one word.
        lines = self.dry_run("host", "-o", out)
        self.assertEqual(shlex.split(lines[0]), ["lttng", "create", "vmtrace-host", f"--output={out}"])
        self.assertIn("lttng_statedump_*", shlex.split(lines[2])[-1].split(","))

    def test_help(self):
        proc = vmtrace("record", "--help")
        self.assertEqual(proc.returncode, 0)
        for text in ("host|guest", "--dry-run", "--live", "--subbuf-size", "--start", "exit status"):
            self.assertIn(text, proc.stdout)

    def test_bad_usage_exits_2_with_one_line(self):
        cases = [(["record"], "record needs a side: host, guest or memory"),
                 (["record", "vm"], "the side is host, guest or memory"),
                 (["record", "host", "guest"], "the side is host, guest or memory"),
                 (["record", "host", "--subbuf-size", "3M"], "must be a power of two"),
                 (["record", "host", "--subbuf-size", "lots"], "not a size"),
                 (["record", "host", "--num-subbuf", "3"], "must be a power of two"),
                 (["record", "host", "--live", "-o", "x"], "exclude each other"),
                 (["record", "host", "--live-timer-us", "5"], "needs --live"),
                 (["record", "host", "--url", "file:///tmp/x"], "net://HOST"),
                 (["record", "host", "--relayd", "file:///tmp/x"], "net://HOST"),
                 (["record", "guest", "--url", "net://a", "--relayd", "net://b"], "--url and --relayd are the same"),
                 (["record", "host", "--context", "colour"], "unknown context `colour`"),
                 (["record", "host", "--session", "a/b"], "not a session name"),
                 # lttng would take it for its own option: `lttng create --help`
                 (["record", "host", "--session", "--help"], "`--help` is not a session name"),
                 (["record", "host", "--session=-x"], "`-x` is not a session name"),
                 # read as unsigned, -1 became 4294967295
                 (["record", "host", "--live", "--live-timer-us", "-1"], "--live-timer-us -1: must be between 1"),
                 (["record", "host", "--live", "--live-timer-us", "0"], "--live-timer-us 0: must be between 1"),
                 (["record", "host", "--live", "--live-timer-us", "4294967296"], "must be between 1 and 4294967295"),
                 (["record", "host", "--num-subbuf", "-2"], "--num-subbuf -2: must be a power of two"),
                 # `none` is listed as valid: refused with other contexts for what it is, not as unknown
                 (["record", "host", "--context", "none", "--context", "tid"], "--context none means no context"),
                 (["record", "host", "--context", "tid", "--context", "tid"], "--context tid given twice"),
                 (["record", "host", "--frobnicate"], "unrecognised option")]
        for args, message in cases:
            with self.subTest(args=args):
                proc = vmtrace(*args, "--dry-run")
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, one_line(self, proc))
                self.assertEqual(proc.stdout, "")


@unittest.skipUnless(shutil.which("lttng-sessiond") and shutil.which("lttng"), "lttng-tools is not installed")
class RecordSessionDaemonTest(TempDirTestCase):
    def home(self, name):
        home = self.tmp / name
        home.mkdir()
        home.chmod(0o777)
        self.tmp.chmod(0o755)
        return home

    def test_without_a_session_daemon_exits_4_with_one_line(self):
        # Run as an unprivileged user with a private LTTNG_HOME: no daemon of ours there,
        # whatever runs system-wide.
        env = dict(os.environ, LTTNG_HOME=str(self.home("nodaemon")))
        proc = vmtrace("record", "host", "--start", env=env, as_nobody=IS_ROOT)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertEqual(one_line(self, proc),
                         "vmtrace record: session vmtrace-host: cannot be created: no lttng-sessiond is running: "
                         "start one as root (`lttng-sessiond --daemonize`)")
        self.assertEqual(proc.stdout, "")

    @unittest.skipUnless(IS_ROOT and shutil.which("setpriv"), "needs root to run a daemon as another user")
    def test_non_root_daemon_refuses_kernel_tracing_and_nothing_is_left(self):
        daemon = SessionDaemon(self.home("user"), as_nobody=True)
        try:
            proc = vmtrace("record", "guest", "--start", env=daemon.env, as_nobody=True)
            self.assertEqual(proc.returncode, 4, proc.stderr)
            self.assertEqual(one_line(self, proc),
                             "vmtrace record: session vmtrace-guest: cannot be created: kernel tracing needs a root "
                             "lttng-sessiond, and a client that is root or in the `tracing` group")
            self.assertIn("Currently no available recording session", daemon.sessions())
        finally:
            daemon.stop()

    @unittest.skipUnless(IS_ROOT, "a root lttng-sessiond needs root")
    def test_root_daemon_without_kernel_tracer_exits_4_and_destroys_the_session(self):
        if root_sessiond_running():
            self.skipTest("a root lttng-sessiond already runs on this machine; not starting a second one")
        daemon = SessionDaemon(self.home("root"))
        try:
            out = self.tmp / "traces"
            proc = vmtrace("record", "host", "-o", out, "--start", env=daemon.env)
            if Path("/sys/module/lttng_tracer").exists():
                # This kernel has LTTng: the session is really set up and started.
                self.assertEqual(proc.returncode, 0, proc.stderr)
                listing = daemon.lttng("list", "vmtrace-host").stdout
                self.assertIn("vmtrace-host [active]", listing)
                self.assertIn("sched_switch", listing)
                daemon.lttng("destroy", "vmtrace-host")
                return
            self.assertEqual(proc.returncode, 4, proc.stderr)
            line = one_line(self, proc)
            hint = ("this kernel has no loadable module support, so lttng-modules cannot load"
                    if not Path("/proc/modules").exists() else "lttng-modules is not loaded")
            # Found before any session exists: nothing was created.
            self.assertTrue(line.startswith("vmtrace record: session vmtrace-host: cannot be created: the kernel "
                                            "tracer is unavailable: "), line)
            self.assertIn(hint, line)
            self.assertIn("Currently no available recording session", daemon.sessions())
            # The same refusal once the session exists: a stand-in for lttng_list_tracepoints()
            # (tests/correlator/fake_tracepoints.c, preloaded) offers every event, so the check
            # before creating the session passes; one line, and the half-made session is destroyed.
            for side in ("host", "guest"):
                env = fake_tracepoints_env(daemon.env, side)
                proc = vmtrace("record", side, "-o", out, "--start", env=env)
                self.assertEqual(proc.returncode, 4, proc.stderr)
                line = one_line(self, proc)
                self.assertTrue(line.startswith(f"vmtrace record: session vmtrace-{side}: cannot enable kernel "
                                                "channel vmtrace: "), line)
                self.assertIn(hint, line)
                self.assertIn("Currently no available recording session", daemon.sessions())
            self.assertFalse(out.exists() and any(out.iterdir()))
            # A session of the same name that the user made is reported, and left alone.
            self.assertEqual(daemon.lttng("create", "vmtrace-host", f"--output={out}").returncode, 0)
            proc = vmtrace("record", "host", env=fake_tracepoints_env(daemon.env, "host"))
            self.assertEqual(proc.returncode, 4, proc.stderr)
            self.assertIn("a session of that name exists", one_line(self, proc))
            self.assertIn("vmtrace-host [inactive]", daemon.sessions())
            daemon.lttng("destroy", "vmtrace-host")
        finally:
            daemon.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
