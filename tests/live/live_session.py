"""A real lttng-relayd and a private lttng-sessiond on 127.0.0.1 with a live
user-space session, fed by tests/ust/mem_tracer_feed.c (libvmtrace-mem's
events, one per line the test writes), for the tests of vmtrace's live
mode."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from lttng_daemon import AS_USER, HIDE_ROOT_SESSIOND, IS_ROOT, SessionDaemon  # noqa: E402
from vmtrace_test import SOURCE_DIR  # noqa: E402

FEED = os.environ.get("VMTRACE_MEM_FEED", str(SOURCE_DIR / "build" / "tests" / "vmtrace_mem_tracer_feed"))
EVENTS = "vmtrace_mem:vmtrace_mem_access,vmtrace_mem:vmtrace_mem_sync"


def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 now (bound, then released)."""
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def private_dir(path):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


class RelayDaemon:
    """lttng-relayd on 127.0.0.1 with ports of its own, writing under `out`."""

    def __init__(self, out, ports=None):
        self.control, self.data, self.live = ports or free_ports(3)
        self.out = private_dir(out)
        self.proc = subprocess.Popen(
            ["lttng-relayd", f"--output={self.out}", f"--control-port=tcp://127.0.0.1:{self.control}",
             f"--data-port=tcp://127.0.0.1:{self.data}", f"--live-port=tcp://127.0.0.1:{self.live}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                self.stop()
                raise AssertionError(f"lttng-relayd did not start: {err}")
            time.sleep(0.1)

    def listening(self):
        try:
            with socket.create_connection(("127.0.0.1", self.live), timeout=0.5):
                return True
        except OSError:
            return False

    @property
    def url(self):
        return f"net://127.0.0.1:{self.live}"

    @property
    def set_url(self):
        return f"net://127.0.0.1:{self.control}:{self.data}"

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class LiveSession:
    """A live user-space session of `daemon` streaming to `relayd`."""

    def __init__(self, daemon, relayd, name, timer_us=200_000):
        self.daemon, self.name = daemon, name
        for args in (["create", name, f"--live={timer_us}", f"--set-url={relayd.set_url}"],
                     ["enable-channel", "--userspace", f"--session={name}", "--subbuf-size=256K", "--num-subbuf=4",
                      "mem"],
                     ["enable-event", "--userspace", f"--session={name}", "--channel=mem", EVENTS],
                     ["start", name]):
            daemon.must(*args)

    def destroy(self):
        self.daemon.lttng("stop", self.name)
        self.daemon.lttng("destroy", self.name)


class Feeder:
    """The user-space test application: writes `rate` events per second for
    `seconds` (in slices of 50 ms) and counts them."""

    def __init__(self, daemon):
        self.proc = subprocess.Popen(HIDE_ROOT_SESSIOND + AS_USER + [FEED], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=daemon.env, text=True)
        self.sent = 0

    def run(self, seconds, rate):
        end = time.monotonic() + seconds
        per_slice = max(1, int(rate * 0.05))
        while time.monotonic() < end:
            lines = "".join(f"access {self.sent % 2} {0x1000 + 8 * ((self.sent + i) % 4096)} 8 1 {0x400000 + i}\n"
                            for i in range(per_slice))
            self.proc.stdin.write(lines)
            self.proc.stdin.flush()
            self.sent += per_slice
            time.sleep(0.05)

    def close(self):
        self.proc.stdin.close()
        err = self.proc.stderr.read()
        if self.proc.wait(timeout=60) != 0:
            raise AssertionError(f"the feeder failed: {err}")


def start_session_daemon(home):
    return SessionDaemon(private_dir(home), as_nobody=IS_ROOT)
