"""A private lttng-sessiond for the tests that record: LTTNG_HOME in a
directory of the test's own, optionally run as nobody (root runs it so to
stay apart from a root session daemon), stopped by its pid.  Also the
prefixes that run a traced process as the private daemon's user and out of
the root daemon's sight."""
import os
import signal
import subprocess
import time
from pathlib import Path

IS_ROOT = os.geteuid() == 0
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
# A command's prefix running it as the user of a daemon started with
# as_nobody=IS_ROOT: nobody when root, else the caller.
AS_USER = AS_NOBODY if IS_ROOT else []
# An lttng-ust process registers with the root session daemon too, whose
# sessions record every user's processes: a root lttng-sessiond running on
# this machine (a lab run) would enable our events and record them in its own
# trace.  As root, the traced process runs in a mount namespace where the root
# daemon's directory is empty; it then sees only the private daemon.
HIDE_ROOT_SESSIOND = (["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       "if [ -d /run/lttng ]; then mount -t tmpfs -o size=64k,mode=755 none /run/lttng || exit 97; "
                       'fi; exec "$@"', "sh"] if IS_ROOT else [])


class SessionDaemon:
    """lttng-sessiond with LTTNG_HOME=`home`; `as_nobody`: it and its
    `lttng` clients run as nobody."""

    def __init__(self, home, as_nobody=False):
        self.env = dict(os.environ, LTTNG_HOME=str(home))
        self.as_nobody = as_nobody
        self.pidfile = Path(home) / "sessiond.pid"
        # --daemonize returns once the daemon is ready.
        subprocess.run(self.prefix() + ["lttng-sessiond", "--daemonize", "--quiet", f"--pidfile={self.pidfile}"],
                       env=self.env, check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = int(self.pidfile.read_text().strip())
        deadline = time.monotonic() + 30
        while self.lttng("list").returncode != 0:
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("lttng-sessiond did not start")
            time.sleep(0.2)

    def prefix(self):
        return AS_NOBODY if self.as_nobody else []

    def lttng(self, *args):
        return subprocess.run(self.prefix() + ["lttng", *args], env=self.env, capture_output=True, text=True,
                              check=False, timeout=60)

    def must(self, *args):
        r = self.lttng(*args)
        if r.returncode != 0:
            raise AssertionError(f"lttng {' '.join(args)}: {r.stderr}")

    def sessions(self):
        return self.lttng("list").stdout

    def running(self):
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return False
        return state != "Z"

    def stop(self):
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
