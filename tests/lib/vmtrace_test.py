"""Helpers shared by vmtrace's integration tests: run real babeltrace2
graphs with the vmtrace plugin, simulate recordings, synchronise them."""
import json
import os
import subprocess
import tarfile
import tempfile
import unittest
from pathlib import Path

SOURCE_DIR = Path(os.environ.get("VMTRACE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
PLUGIN_DIR = Path(os.environ.get("VMTRACE_PLUGIN_DIR", SOURCE_DIR / "build" / "plugins"))


def param_value(value):
    """A babeltrace2 CLI parameter value."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(param_value(v) for v in value) + "]"
    return str(value)


def params(**kwargs):
    return ",".join(f"{k.replace('_', '-')}={param_value(v)}" for k, v in kwargs.items())


def babeltrace_env():
    """The environment of a babeltrace2 process: in the sanitizer build,
    the sanitizers' runtime preloaded so that babeltrace2 can load the
    sanitized plugin (tests/CMakeLists.txt)."""
    env = dict(os.environ)
    preload = os.environ.get("VMTRACE_BT2_PRELOAD")
    if preload:
        # The plugin preloaded too: babeltrace2 unloads plugins before the
        # leak check, which would hide its frames and its static storage.
        env["LD_PRELOAD"] = f"{preload}:{PLUGIN_DIR / 'babeltrace-plugin-vmtrace.so'}"
    return env


def babeltrace(args, check=True, timeout=600):
    proc = subprocess.run(["babeltrace2", "--plugin-path", str(PLUGIN_DIR)] + list(args),
                          capture_output=True, text=True, timeout=timeout, check=False, env=babeltrace_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"babeltrace2 {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


class Recording:
    """A simulated recording written by sink.ctf.fs: one trace per machine."""

    def __init__(self, root, ground_truth):
        self.root = Path(root)
        self.ground_truth_path = Path(ground_truth)
        self.host = self._trace("vmtrace-sim-host")
        self.guests = sorted(str(p) for p in self.root.glob("vmtrace-sim-guest*/*/kernel"))

    def _trace(self, machine):
        found = list(self.root.glob(f"{machine}/*/kernel"))
        if len(found) != 1:
            raise AssertionError(f"expected one trace of {machine} under {self.root}, found {found}")
        return str(found[0])

    def guest(self, index):
        return self._trace(f"vmtrace-sim-guest{index}")

    @property
    def memory(self):
        """The memory tracer's trace (a scenario with memory=yes)."""
        path = self.root / "vmtrace-sim-memtracer"
        if not (path / "metadata").exists():
            raise AssertionError(f"no memory trace under {self.root}")
        return str(path)

    def truth(self):
        with open(self.ground_truth_path, encoding="utf-8") as f:
            return json.load(f)


def simulate(out_dir, **scenario):
    """Runs source.vmtrace.scenario into sink.ctf.fs; returns a Recording."""
    out_dir = Path(out_dir)
    truth = out_dir / "ground-truth.json"
    scenario.setdefault("ground_truth", str(truth))
    babeltrace(["run", "-c", f"sim:source.vmtrace.scenario", "-p", params(**scenario),
                "-c", "mux:filter.utils.muxer",
                "-c", "out:sink.ctf.fs", "-p", params(path=str(out_dir / "recorded"), quiet=True),
                "--connect", "sim:mux", "--connect", "mux:out"])
    return Recording(out_dir / "recorded", truth)


def sync_graph(traces, out_dir=None, sink="ctf", **sync_params):
    """The CLI arguments of src.ctf.fs x N -> filter.vmtrace.sync -> sink."""
    args = ["run"]
    for i, trace in enumerate(traces):
        args += ["-c", f"in{i}:src.ctf.fs", "-p", params(inputs=[trace])]
    args += ["-c", "sync:filter.vmtrace.sync"]
    if sync_params:
        args += ["-p", params(**sync_params)]
    args += ["-c", "mux:filter.utils.muxer"]
    if sink == "ctf":
        args += ["-c", "out:sink.ctf.fs", "-p", params(path=str(out_dir), quiet=True)]
    else:
        args += ["-c", "out:sink.utils.dummy"]
    for i in range(len(traces)):
        args += ["--connect", f"in{i}:sync"]
    args += ["--connect", "sync:mux", "--connect", "mux:out"]
    return args


def synchronize(traces, out_dir, check=True, **sync_params):
    """Synchronises `traces` into out_dir/synchronized; returns (process, stats)."""
    out_dir = Path(out_dir)
    stats_path = out_dir / "sync-stats.json"
    sync_params.setdefault("stats", str(stats_path))
    proc = babeltrace(sync_graph(traces, out_dir / "synchronized", **sync_params), check=check)
    stats = None
    if stats_path.exists():
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
    return proc, stats


def machine_stats(stats, name):
    for machine in stats["machines"]:
        if machine["name"] == name:
            return machine
    raise AssertionError(f"no machine {name} in {[m['name'] for m in stats['machines']]}")


class TempDirTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="vmtrace-test-")
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()


def unpack_recording(archive, prefix):
    """A bundled recording (examples/*/recording.tar.xz) unpacked into a new
    temporary directory: (the TemporaryDirectory, to clean up; its path)."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    with tarfile.open(archive) as f:
        f.extractall(tmp.name)
    return tmp, Path(tmp.name)
