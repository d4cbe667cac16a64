#!/usr/bin/env python3
"""`vmtrace top`'s full-screen view as a person sees it: run under tmux on a
simulated recording, keys sent (sort, select a VM, freeze, quit), the pane
captured and read."""
import os
import shutil
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR, TempDirTestCase, simulate  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(SOURCE_DIR / "build" / "vmtrace"))


class Tmux:
    """A tmux server of the test's own (-S) running one command in a
    window of the given size."""

    def __init__(self, socket, command, width=160, height=40, env=None):
        self.socket = socket
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("TMUX", None)
        self.run("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "top",
                 " ".join(f"'{c}'" for c in command) + "; echo exit=$? > " + f"'{socket}.status'; sleep 30")

    def run(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], env=self.env,
                              capture_output=True, text=True, check=True, timeout=30)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "top").stdout

    def keys(self, *keys):
        self.run("send-keys", "-t", "top", *keys)

    def wait_for(self, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed what was expected; last:\n{self.screen()}")

    def kill(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, check=False, timeout=30)


def title(screen):
    return screen.splitlines()[0] if screen else ""


@unittest.skipUnless(shutil.which("tmux"), "tmux is not installed (scripts/install-deps.sh installs it)")
class TopTerminalTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp_class = Path(os.environ.get("TMPDIR", "/tmp")) / f"vmtrace-top-tty-{os.getpid()}"
        cls.tmp_class.mkdir(parents=True, exist_ok=True)
        rec = simulate(cls.tmp_class / "sim", seed=5)
        cls.traces = [rec.host] + rec.guests

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp_class, ignore_errors=True)

    def start(self, *extra, width=160, height=40):
        tmux = Tmux(str(self.tmp / "tmux"), [VMTRACE, "top", "-d", "0.5", *extra, *self.traces], width, height)
        self.addCleanup(tmux.kill)
        return tmux

    def status(self):
        path = Path(str(self.tmp / "tmux") + ".status")
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        return path.read_text().strip() if path.exists() else None

    def test_sort_select_freeze_and_quit(self):
        tmux = self.start()
        screen = tmux.wait_for(lambda s: "sessions ended" in s and "VM vmtrace-sim-guest1" in s)
        self.assertIn("vmtrace top", title(screen))
        self.assertIn("sort vcpu", title(screen))
        self.assertIn("VM vmtrace-sim-guest0", screen)
        self.assertIn("sync accurate", screen)
        self.assertIn("GUEST%", screen)
        self.assertIn("keys: s sort", screen.splitlines()[-1])
        rows = [l for l in screen.splitlines() if l.strip() and l.split()[0].isdigit()]
        self.assertEqual(len(rows), 4, screen)  # 2 VMs x 2 vCPUs
        for row in rows:
            guest, hyp, preempted, idle = (float(v) for v in row.split()[3:7])
            self.assertAlmostEqual(guest + hyp + preempted + idle, 100.0, delta=1.0, msg=row)

        tmux.keys("s")
        screen = tmux.wait_for(lambda s: "sort guest%" in title(s))
        tmux.keys("v")
        screen = tmux.wait_for(lambda s: "VM vmtrace-sim-guest0" in title(s))
        self.assertNotIn("VM vmtrace-sim-guest1 ", screen)
        tmux.keys("v")
        screen = tmux.wait_for(lambda s: "VM vmtrace-sim-guest1" in title(s))
        self.assertNotIn("VM vmtrace-sim-guest0 ", screen)
        tmux.keys("a")
        screen = tmux.wait_for(lambda s: "VM vmtrace-sim" not in title(s))
        self.assertIn("VM vmtrace-sim-guest0", screen)
        tmux.keys("f")
        tmux.wait_for(lambda s: "FROZEN" in title(s))
        tmux.keys("q")
        self.assertEqual(self.status(), "exit=0")

    def test_a_terminal_too_small_says_so(self):
        tmux = self.start(width=50, height=6)
        screen = tmux.wait_for(lambda s: "terminal too small" in s)
        self.assertIn("50x6", screen)
        tmux.keys("q")
        self.assertEqual(self.status(), "exit=0")

    def test_without_a_terminal_it_asks_for_batch(self):
        proc = subprocess.run([VMTRACE, "top", *self.traces], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--batch or --json", proc.stderr)


if __name__ == "__main__":
    unittest.main()
