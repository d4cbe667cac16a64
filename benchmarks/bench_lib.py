"""Helpers shared by the benchmark scripts: where vmtrace is, the simulator's
event rate, a command timed by /usr/bin/time, and babeltrace2 alone on the
traces (the baseline every benchmark measures against)."""
import re
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "lib"))
from vmtrace_test import PLUGIN_DIR, params  # noqa: E402

# Events per simulated second with the default workload (host + 2 guests x 2 vCPUs).
EVENTS_PER_SECOND = 130_000
VMTRACE = TOP / "build" / "vmtrace"


def timed(command):
    """Runs `command`; returns (wall s, cpu s (user + system), peak RSS MiB)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "@@ %e %U %S %M"] + command, capture_output=True, text=True,
                          check=False)
    m = re.search(r"@@ ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", proc.stderr)
    if proc.returncode != 0 or m is None:
        raise SystemExit(f"{' '.join(map(str, command[:3]))} failed:\n{proc.stderr[-3000:]}")
    return float(m.group(1)), float(m.group(2)) + float(m.group(3)), int(m.group(4)) / 1024.0


def babeltrace2(graph):
    """The babeltrace2 command running `graph` (its arguments from `run` on) with vmtrace's plugin."""
    return ["babeltrace2", "--plugin-path", str(PLUGIN_DIR)] + graph


def baseline_graph(traces, out=None):
    """babeltrace2's arguments decoding `traces` to sink.utils.dummy, or with
    `out` re-encoding them with sink.ctf.fs into that directory."""
    args = ["run"]
    for i, trace in enumerate(traces):
        args += ["-c", f"in{i}:src.ctf.fs", "-p", params(inputs=[trace])]
    args += ["-c", "mux:filter.utils.muxer"]
    args += (["-c", "out:sink.utils.dummy"] if out is None
             else ["-c", "out:sink.ctf.fs", "-p", params(path=str(out), quiet=True)])
    for i in range(len(traces)):
        args += ["--connect", f"in{i}:mux"]
    return args + ["--connect", "mux:out"]


def baseline(traces, out=None):
    """The babeltrace2 command of baseline_graph(traces, out)."""
    return babeltrace2(baseline_graph(traces, out))
