#!/usr/bin/env python3
"""`vmtrace report`: the HTML report of an analysis directory, rendered in
headless Chromium (Debian's chromium package), and its bad inputs."""
import copy
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import TempDirTestCase, simulate  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))
STATES = ("guest", "hypervisor", "preempted", "idle")


def vmtrace(*args):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=60)


# ---- the input --------------------------------------------------------------

def fixture_analysis():
    """An analysis.json as docs/analysis-output.md describes it: host `l1`,
    VM `l2a` (2 vCPUs, guest trace, accurate sync) and VM `l2b` (3 vCPUs, no
    guest trace, not synchronised)."""
    rng = random.Random(7)
    begin = 1_790_000_004_000_000_000
    bins, bin_ns = 400, 50_000_000  # 20 s

    def timeline_vcpu(vcpu, tid, busy_phase, unknown_bins):
        series = {"vcpu": vcpu, "tid": tid, **{s: [] for s in STATES}, "unknown": []}
        for b in range(bins):
            if b < unknown_bins:
                fractions = (0.0, 0.0, 0.0, 0.0)
            else:
                load = 0.5 + 0.45 * math.sin(b / 37.0 + busy_phase)
                guest = load * rng.uniform(0.75, 0.9)
                hyper = load * rng.uniform(0.04, 0.1)
                preempted = (load * rng.uniform(0.05, 0.3)) if 150 <= b < 230 else load * rng.uniform(0, 0.02)
                scale = min(1.0, 1.0 / max(1e-9, guest + hyper + preempted))
                guest, hyper, preempted = guest * scale, hyper * scale, preempted * scale
                fractions = (guest, hyper, preempted, max(0.0, 1.0 - guest - hyper - preempted))
            for state, f in zip(STATES, fractions):
                series[state].append(round(f, 4))
            series["unknown"].append(round(1.0 - sum(fractions), 4))
        return series

    def vcpu_totals(series, vcpu, tid, exits, pcpus):
        states = {s: int(sum(series[s]) * bin_ns) for s in STATES}
        states["unknown"] = bins * bin_ns - sum(states.values())
        residency = {str(c): int(states["guest"] * share) for c, share in pcpus.items()}
        return {"vcpu": vcpu, "tid": tid, "states_ns": states,
                "intervals": {s: max(1, states[s] // 40_000) for s in states},
                "exits": exits, "pcpu_migrations": len(pcpus) * 3 - 1, "pcpu_residency_ns": residency}

    def exits(vcpus, reasons):
        rows = []
        duration_s = bins * bin_ns / 1e9
        for reason, code, per_vcpu, p50 in reasons:
            for vcpu, count in zip(vcpus, per_vcpu):
                rows.append({"reason": reason, "code": code, "isa": "svm", "vcpu": vcpu, "count": count,
                             "rate_per_s": round(count / duration_s, 3),
                             "latency_ns": {"min": p50 // 5, "p50": p50, "p90": p50 * 3, "p99": p50 * 9,
                                            "max": p50 * 40, "mean": p50 * 1.7}})
            total = sum(per_vcpu)
            rows.append({"reason": reason, "code": code, "isa": "svm", "vcpu": "all", "count": total,
                         "rate_per_s": round(total / duration_s, 3),
                         "latency_ns": {"min": p50 // 5, "p50": p50, "p90": p50 * 3, "p99": p50 * 9,
                                        "max": p50 * 40, "mean": p50 * 1.7 + 0.5}})
        return rows

    def histogram(reasons):
        bounds = [0] + [2 ** k for k in range(6, 26)]  # 64 ns .. 33 ms
        out = {}
        for reason, _code, per_vcpu, p50 in reasons:
            total = sum(per_vcpu)
            centre = math.log2(p50) - 5
            weights = [math.exp(-((i - centre) ** 2) / 3.0) for i in range(len(bounds))]
            norm = sum(weights)
            out[reason] = [int(total * w / norm) for w in weights]
        return {"bounds_ns": bounds, "reasons": out}

    a_series = [timeline_vcpu(0, 3001, 0.0, 3), timeline_vcpu(1, 3002, 1.7, 5)]
    a_reasons = [("NPF", 1024, [48211, 39117], 1500), ("VMMCALL", 129, [2210, 2188], 3100),
                 ("IOIO", 123, [9312, 104], 5400), ("HLT", 120, [1733, 1802], 90_000),
                 ("INTR", 96, [12004, 11876], 900)]
    b_series = [timeline_vcpu(v, 3101 + v, 0.6 * v + 3.0, 2) for v in range(3)]
    b_reasons = [("NPF", 1024, [7001, 6120, 5873], 2100), ("HLT", 120, [3550, 3605, 3421], 250_000),
                 ("INTR", 96, [4404, 4380, 4511], 1200)]

    vm_a = {
        "name": "l2a", "vm_uid": "0x5f3e9a01c4d2b7e6", "qemu_pid": 3000, "guest_trace": "l2a",
        "sync": {"quality": "accurate", "bound_ns": 1800},
        "vcpus": [vcpu_totals(a_series[0], 0, 3001, 73470, {0: 0.7, 3: 0.3}),
                  vcpu_totals(a_series[1], 1, 3002, 55087, {1: 0.55, 2: 0.4, 3: 0.05})],
        "exits": exits([0, 1], a_reasons),
        "exit_histogram": histogram(a_reasons),
        "guest_threads": [
            {"tid": 400, "comm": "postgres", "guest_ns": 6_123_000_000, "vcpu_migrations": 17,
             "guest_ns_by_vcpu": {"0": 4_100_000_000, "1": 2_023_000_000}},
            {"tid": 401, "comm": "pgbench", "guest_ns": 2_870_500_000, "vcpu_migrations": 9,
             "guest_ns_by_vcpu": {"0": 870_500_000, "1": 2_000_000_000}},
            {"tid": 12, "comm": "kworker/0:1", "guest_ns": 41_000_000, "vcpu_migrations": 0,
             "guest_ns_by_vcpu": {"0": 41_000_000}},
        ],
        "guest_migrations": {"count": 47, "matrix": [[0, 23], [24, 0]]},
        "coscheduling": {"running_ns": [4_210_000_000, 9_870_000_000, 5_920_000_000]},
        "timeline": {"bin_ns": bin_ns, "bins": bins, "vcpus": a_series},
        "nondet": {"pio": 9416, "mmio": 311, "msr": 2742, "interrupt": 23880, "hypercall": 4398},
    }
    vm_a["placement"] = {"pcpus": [0, 1, 2, 3], "residency_ns": [
        [int(vm_a["vcpus"][v]["pcpu_residency_ns"].get(str(c), 0)) for c in range(4)] for v in range(2)]}
    vm_b = {
        "name": "l2b", "vm_uid": "0x77aa10e3f0c25d19", "qemu_pid": 3100, "guest_trace": None, "sync": None,
        "vcpus": [vcpu_totals(b_series[v], v, 3101 + v, 14000 + 1000 * v, {v: 0.8, (v + 1) % 4: 0.2})
                  for v in range(3)],
        "exits": exits([0, 1, 2], b_reasons),
        "exit_histogram": histogram(b_reasons),
        "guest_threads": [],
        "guest_migrations": None,
        "coscheduling": {"running_ns": [3_000_000_000, 6_500_000_000, 7_100_000_000, 3_400_000_000]},
        "timeline": {"bin_ns": bin_ns, "bins": bins, "vcpus": b_series},
        "nondet": {"pio": 1502, "mmio": 77, "msr": 960, "interrupt": 13295, "hypercall": 0},
    }
    vm_b["placement"] = {"pcpus": [0, 1, 2, 3], "residency_ns": [
        [int(vm_b["vcpus"][v]["pcpu_residency_ns"].get(str(c), 0)) for c in range(4)] for v in range(3)]}
    return {
        "format": "vmtrace-analysis", "version": 1,
        "begin_ns": begin, "end_ns": begin + bins * bin_ns,
        "host": {"hostname": "l1", "cpus": 4},
        "events": {"host": 1_234_567, "guests": 345_678, "ignored": 1_212, "unattributed": 17, "reordered": 0},
        "vms": [vm_a, vm_b],
        "warnings": ["vCPU 1 of l2a: 3 guest events outside a guest-mode interval"],
    }


def make_analysis_dir(directory):
    """The output of `vmtrace analyze` on a simulated recording: two VMs of
    3 vCPUs, one given with its guest trace (synchronised), the other
    without (no guest threads, no sync)."""
    directory = Path(directory)
    rec = simulate(directory.parent / "recording", seed=51, guests=2, vcpus=3, duration_ms=1_500)
    proc = vmtrace("analyze", "-q", rec.host, rec.guest(0), "-o", directory)
    if proc.returncode != 0:
        raise AssertionError(f"vmtrace analyze failed: {proc.stderr}")
    return directory


# ---- what the page shows ----------------------------------------------------

def fmt_int(n):
    """The page's fmtInt."""
    return f"{round(abs(n)):,}" if n >= 0 else "-" + f"{round(abs(n)):,}"


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def find_all(self, predicate):
        for child in self.children:
            if isinstance(child, Node):
                if predicate(child):
                    yield child
                yield from child.find_all(predicate)


class Dom(HTMLParser):
    VOID = {"meta", "link", "br", "img", "input", "hr", "col", "wbr", "source"}

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(page, work, *args):
    """Runs headless Chromium on `page` with a private profile; returns the
    process (stdout: what --dump-dom printed; stderr: the browser's log)."""
    command = [chromium_binary(), "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
               "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--disable-background-networking",
               "--disable-dev-shm-usage", f"--user-data-dir={work}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=5000", *args, Path(page).as_uri()]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, HOME=str(work)))


def console_messages(log):
    """The page's console output in Chromium's log (errors, uncaught exceptions)."""
    return [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def rendered(dom):
    """The <html> element of a page that rendered without a script error."""
    node = next(dom.root.find_all(lambda n: n.tag == "html"))
    if "data-js-errors" in node.attrs:
        raise AssertionError(f"script errors: {node.attrs['data-js-errors']}")
    if node.attrs.get("data-render") != "ok":
        raise AssertionError(f"the page did not finish rendering: data-render={node.attrs.get('data-render')}")
    return node


def bare_analysis():
    """Only the keys the report requires; every optional section absent."""
    return {"format": "vmtrace-analysis", "version": 1, "begin_ns": 5, "end_ns": 5, "host": None, "events": {},
            "vms": [{"name": "bare", "guest_trace": "g", "sync": {"quality": "approximate", "bound_ns": None},
                     "vcpus": [{"vcpu": 0, "states_ns": {}}],
                     "timeline": {"bin_ns": 1000, "bins": 1, "vcpus": [
                         {"vcpu": 0, "guest": [0], "hypervisor": [0], "preempted": [0], "idle": [0]}]}},
                    {"name": "empty", "guest_trace": None, "sync": None, "vcpus": [],
                     "timeline": {"bin_ns": 1, "bins": 0, "vcpus": []}}]}


HOVER_PROBE = """<script>
(function () {
  var row = document.querySelector('.tl-row');
  var box = row.getBoundingClientRect();
  var bins = Number(row.getAttribute('data-bins'));
  var middle = (Math.floor(bins / 2) + 0.5) / bins;  // the middle of bin bins // 2
  row.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: box.left + box.width * middle,
                                                 clientY: box.top + box.height / 2}));
  var tip = document.getElementById('tip');
  document.documentElement.setAttribute('data-probe-tip', tip.hidden ? 'hidden' : tip.textContent);
})();
</script>
"""

HOSTILE = "</script><script>document.documentElement.setAttribute('data-pwned','1')</script> <!-- & \u2028"


class CliReportTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="vmtrace-report-")
        cls.shared = Path(cls._shared.name)
        cls.analysis_dir = make_analysis_dir(cls.shared / "analysis")
        cls.doc = json.loads((cls.analysis_dir / "analysis.json").read_text(encoding="utf-8"))

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def write(self, doc, name="analysis.json"):
        directory = self.tmp / "in"
        directory.mkdir(exist_ok=True)
        path = directory / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
        return directory

    def test_report_renders_in_chromium(self):
        if chromium_binary() is None:
            self.fail("chromium is not installed (scripts/install-deps.sh installs it)")
        doc = copy.deepcopy(self.doc)
        doc.setdefault("warnings", []).append(HOSTILE)
        directory = self.write(doc)
        proc = vmtrace("report", directory)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        page = directory / "report.html"
        self.assertEqual(proc.stdout, f"vmtrace report: wrote {page.resolve()}\n")
        self.assertEqual(proc.stderr, "")
        html = page.read_text(encoding="utf-8")

        # self-contained: nothing loaded from elsewhere
        self.assertIsNone(re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)|@import|url\(\s*["']?(https?:|//)""",
                                    html, re.I))
        # the embedded data is the analysis, and nothing in it closes the element
        match = re.search(r'<script type="application/json" id="vmtrace-data">(.*?)</script>', html, re.S)
        self.assertIsNotNone(match)
        self.assertEqual(json.loads(match.group(1))["analysis"], doc)

        # A copy of the page that also hovers over the middle of the first
        # timeline row and records what the hover box says.
        probe = page.with_name("probe.html")
        probe.write_text(html.replace("</body>", HOVER_PROBE + "</body>"), encoding="utf-8")
        # A document with only the keys the report needs.
        bare = self.write(bare_analysis(), "bare.json")

        screenshot = Path(os.environ.get("VMTRACE_REPORT_SCREENSHOT", self.tmp / "report.png"))
        shot = chromium(page, self.tmp / "profile-shot", f"--screenshot={screenshot}", "--window-size=1400,5200")
        dump = chromium(probe, self.tmp / "profile-dom", "--dump-dom", "--window-size=1400,1000")
        proc = vmtrace("report", bare / "bare.json", "-o", bare / "bare.html")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        dump_bare = chromium(bare / "bare.html", self.tmp / "profile-bare", "--dump-dom", "--window-size=1400,1000")
        dom_text, dom_log = dump.communicate(timeout=60)
        bare_text, bare_log = dump_bare.communicate(timeout=60)
        _, shot_log = shot.communicate(timeout=60)
        for process, log in ((dump, dom_log), (dump_bare, bare_log), (shot, shot_log)):
            self.assertEqual(process.returncode, 0, log[-3000:])
            self.assertEqual(console_messages(log), [])
        self.assertGreater(screenshot.stat().st_size, 20_000)

        bare_dom = Dom(bare_text)
        self.assertEqual(rendered(bare_dom).attrs.get("data-render"), "ok", bare_text[-2000:])
        self.assertEqual(len(list(bare_dom.root.find_all(lambda n: "tl-row" in n.classes()))), 1)

        dom = Dom(dom_text)
        html_node = rendered(dom)
        self.assertNotIn("data-pwned", html_node.attrs)
        page_text = dom.root.text()

        # the hover box of a timeline bin: the middle bin of the first VM's vCPU 0
        vm0 = doc["vms"][0]
        series = min(vm0["timeline"]["vcpus"], key=lambda v: v["vcpu"])
        bins, bin_ns = vm0["timeline"]["bins"], vm0["timeline"]["bin_ns"]
        tip = html_node.attrs.get("data-probe-tip", "")
        self.assertIn(f"{vm0['name']} \u00b7 vCPU {series['vcpu']}", tip)
        guest = re.search(r"Guest: ([<>]?)([0-9.]+)%", tip)
        self.assertIsNotNone(guest, tip)
        self.assertAlmostEqual(float(guest.group(2)), series["guest"][bins // 2] * 100,
                               delta=0.1 if guest.group(1) else 0.051)  # "<0.1%", ">99.9%" or one decimal
        self.assertIn(f"{(bins // 2) * bin_ns / 1e9:.2f}", tip)
        self.assertIn(HOSTILE.replace("\u2028", "").strip()[:40], page_text)

        # header
        self.assertIn(doc["host"]["hostname"], page_text)
        for key in ("host", "guests", "ignored"):
            self.assertIn(fmt_int(doc["events"][key]), page_text)

        rows = list(dom.root.find_all(lambda n: "tl-row" in n.classes()))
        for vm in doc["vms"]:
            with self.subTest(vm=vm["name"]):
                # one timeline row per vCPU
                vcpus = [v["vcpu"] for v in vm["timeline"]["vcpus"]]
                mine = [r for r in rows if r.attrs.get("data-vm") == vm["name"]]
                self.assertEqual(sorted(int(r.attrs["data-vcpu"]) for r in mine), sorted(vcpus))
                self.assertEqual(len(mine), len(vm["vcpus"]))
                for row in mine:
                    self.assertEqual(int(row.attrs["data-bins"]), vm["timeline"]["bins"])
                    self.assertTrue(list(row.find_all(lambda n: n.tag == "path")), "no state drawn")

                card = next(dom.root.find_all(lambda n: "vm" in n.classes() and n.attrs.get("data-vm") == vm["name"]))
                text = card.text()
                # the numbers of the JSON are in the tables
                exits = list(card.find_all(lambda n: n.tag == "table" and "exits" in n.classes()))
                self.assertEqual(len(exits), 1)
                exits_text = exits[0].text()
                for e in vm["exits"]:
                    if e["vcpu"] == "all":
                        self.assertIn(e["reason"], exits_text)
                        self.assertIn(fmt_int(e["count"]), exits_text)
                histograms = list(card.find_all(lambda n: "histogram" in n.classes()))
                self.assertEqual({h.attrs["data-reason"] for h in histograms},
                                 {r for r, c in vm["exit_histogram"]["reasons"].items() if sum(c)})
                states = next(card.find_all(lambda n: n.tag == "table" and "states" in n.classes()))
                self.assertEqual(len(list(states.find_all(lambda n: n.tag == "tr" and "data-vcpu" in n.attrs))),
                                 len(vm["vcpus"]))
                for v in vm["vcpus"]:
                    self.assertIn(fmt_int(v["exits"]), states.text())
                for kind, count in vm["nondet"].items():
                    tile = next(card.find_all(lambda n, k=kind: n.attrs.get("data-kind") == k))
                    self.assertIn(fmt_int(count), tile.text())
                if "replay_log" in vm:
                    line = next(card.find_all(lambda n: "data-replay-log" in n.attrs))
                    self.assertIn(f"{fmt_int(vm['replay_log']['entries'])} entries", line.text())
                placement = next(card.find_all(lambda n: n.tag == "table" and "placement" in n.classes()))
                self.assertEqual(len(list(placement.find_all(lambda n: n.tag == "tr"))), len(vm["vcpus"]) + 1)
                if vm["guest_trace"] is None:
                    self.assertIn("No guest trace", text)
                    self.assertIn("no guest trace", text)  # the badge
                    self.assertFalse(list(card.find_all(lambda n: "migrations" in n.classes())))
                else:
                    matrix = next(card.find_all(lambda n: n.tag == "table" and "migrations" in n.classes()))
                    cells = [c.text() for c in matrix.find_all(lambda n: n.tag == "td")]
                    self.assertEqual(cells, [fmt_int(x) if x or i != j else "\u00b7"
                                             for i, row in enumerate(vm["guest_migrations"]["matrix"])
                                             for j, x in enumerate(row)])
                    if vm["sync"] is None:
                        self.assertIn("not synchronised", text)
                    else:
                        self.assertIn(f"sync {vm['sync']['quality']}", text)

    def test_default_output_and_explicit_file(self):
        out = self.tmp / "elsewhere.html"
        proc = vmtrace("report", self.analysis_dir / "analysis.json", "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, f"vmtrace report: wrote {out.resolve()}\n")
        self.assertIn("<!DOCTYPE html>", out.read_text(encoding="utf-8"))
        self.assertEqual(list(self.tmp.glob("*.tmp")), [])

    def test_bad_input_exits_1_with_one_line(self):
        # Always the fixture: the cases name its keys.
        base = fixture_analysis()

        def without(path):
            doc = copy.deepcopy(base)
            *parents, last = path
            target = doc
            for key in parents:
                target = target[key]
            del target[last]
            return doc

        def changed(path, value):
            doc = copy.deepcopy(base)
            *parents, last = path
            target = doc
            for key in parents:
                target = target[key]
            target[last] = value
            return doc

        short = copy.deepcopy(base)
        short["vms"][1]["timeline"]["vcpus"][2]["idle"].pop()
        cases = [
            (None, "analysis.json: no such file"),
            ("{\"format\": ", "analysis.json: not valid JSON: parse error"),
            ("[1, 2]", "the top level is an array, expected an object"),
            (changed(["format"], "something-else"), "`format` is \"something-else\", expected \"vmtrace-analysis\""),
            (changed(["version"], 2), "unsupported `version` 2"),
            (without(["vms"]), "missing key `vms`"),
            (without(["begin_ns"]), "missing key `begin_ns`"),
            (without(["vms", 0, "timeline"]), "missing key `vms[0].timeline`"),
            (without(["vms", 1, "timeline", "vcpus", 0, "guest"]), "missing key `vms[1].timeline.vcpus[0].guest`"),
            (without(["vms", 0, "vcpus", 1, "states_ns"]), "missing key `vms[0].vcpus[1].states_ns`"),
            (without(["vms", 1, "sync"]), "missing key `vms[1].sync`"),
            (changed(["vms", 0, "vcpus"], "two"), "`vms[0].vcpus` is a string, expected an array"),
            (changed(["vms", 0, "timeline", "bin_ns"], 0), "`vms[0].timeline.bin_ns` is 0"),
            (short, "`vms[1].timeline.vcpus[2].idle` has 399 values, but `vms[1].timeline.bins` is 400"),
        ]
        for doc, message in cases:
            with self.subTest(message=message):
                directory = self.tmp / "bad"
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir()
                if doc is not None:
                    (directory / "analysis.json").write_text(doc if isinstance(doc, str) else json.dumps(doc),
                                                             encoding="utf-8")
                proc = vmtrace("report", directory)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn(message, proc.stderr)
                self.assertTrue(proc.stderr.startswith(f"vmtrace report: {directory / 'analysis.json'}: "),
                                proc.stderr)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
                self.assertEqual(proc.stdout, "")
                self.assertFalse((directory / "report.html").exists())

    def test_unwritable_output_exits_1(self):
        proc = vmtrace("report", self.analysis_dir, "-o", self.tmp / "no" / "such" / "dir" / "r.html")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("r.html: cannot write", proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)

    def test_usage_errors_exit_2(self):
        cases = [([], "report needs an analysis directory"),
                 ([self.tmp / "missing"], "missing: not a directory"),
                 ([self.analysis_dir, "--outptu", "x"], "unrecognised option")]
        for args, message in cases:
            with self.subTest(args=args):
                proc = vmtrace("report", *args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, proc.stderr)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)

    def test_help(self):
        proc = vmtrace("report", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("ANALYSIS_DIR", proc.stdout)
        self.assertIn("report ANALYSIS_DIR", vmtrace("--help").stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
