# SPDX-License-Identifier: GPL-2.0-only
"""The lab's memory-tracer checks (60-check.py calls check_memory).

L0's QEMU plugin recorded L1's memory accesses in guest mode inside the
window l1.sh opened around l2a's workload; L1 made a clock handshake mark
every 50 ms. Checks that every mark paired, runs `vmtrace isolate` on the
host, the guests and the memory trace, and measures the join against the
virtual address the plugin saw (which the join never reads): precision
and recall, and the workload's buffer found in l2a alone.
"""
import collections
import json
import os
import re
import statistics
import subprocess

# "[12.345678901] (+?.?) [host ][provider:]name: [{ context }, ]{ a = 1, b = 0x2 }": a kernel
# trace names its host, an lttng-ust trace host:procname:(vpid), an
# isolated one nothing.
TIMED_RE = re.compile(r"^\[(\d+)\.(\d+)\] \([^)]*\) .*?(?:\w+:)?(\w+): \{")
FIELD_RE = re.compile(r'(\w+) = ("(?:[^"\\]|\\.)*"|[^,]+)')
USER_TOP = 1 << 47
PAGE = 4096


def value(v):
    v = v.strip()
    if v.startswith('"'):
        return v[1:-1]
    try:
        return int(v, 0)
    except ValueError:
        return v


def parse(line, names=None):
    """(name, ns, fields) of one line of babeltrace2 --clock-seconds, or None
    (not an event, or not one of `names`)."""
    m = TIMED_RE.match(line)
    if not m or (names and m.group(3) not in names):
        return None
    ns = int(m.group(1)) * 1_000_000_000 + int(m.group(2).ljust(9, "0")[:9])
    payload = line[line.rfind("{ ") + 2:].rstrip().removesuffix("}")
    return m.group(3), ns, {k: value(v) for k, v in FIELD_RE.findall(payload)}


def events(path, names=None):
    """(name, ns, fields) of a trace, in time order; only `names` if given."""
    cmd = ["babeltrace2", "--clock-seconds", path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1 << 20)
    for line in proc.stdout:
        event = parse(line, names)
        if event:
            yield event
    if proc.wait() != 0:
        raise RuntimeError(f"babeltrace2 failed on {path}")


def fit(xs, ys):
    """Least-squares line y = a + b x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def check_marks(out, check):
    host = collections.defaultdict(dict)
    for name, ns, f in events(os.path.join(out, "l1", "trace"), {"vmtrace_memsync_begin", "vmtrace_memsync_end"}):
        host[f["cnt"]][name] = ns
    tracer = {}
    for _, ns, f in events(os.path.join(out, "memtrace"), {"vmtrace_mem_sync"}):
        tracer[f["cnt"]] = ns
    complete = {c: v for c, v in host.items() if len(v) == 2}
    check(len(complete) > 20, f"memsync: {len(complete)} host marks recorded (every 50 ms)")
    # The plugin runs from L1's first instruction, the host session only
    # while tracing: every host mark must have reached the tracer.
    unpaired = sorted(set(complete) - set(tracer))
    check(not unpaired, f"memsync: every host mark seen by the tracer ({len(unpaired)} not: {unpaired[:5]})")
    paired = sorted(set(complete) & set(tracer))
    if len(paired) < 3:
        return
    widths = sorted(complete[c]["vmtrace_memsync_end"] - complete[c]["vmtrace_memsync_begin"] for c in paired)
    mids = [(complete[c]["vmtrace_memsync_end"] + complete[c]["vmtrace_memsync_begin"]) / 2 for c in paired]
    ts = [tracer[c] for c in paired]
    a, b = fit(ts, mids)
    inside = sum(complete[c]["vmtrace_memsync_begin"] - 50 <= a + b * tracer[c] <= complete[c]["vmtrace_memsync_end"] + 50
                 for c in paired)
    print(f"memsync: {len(paired)} marks paired; bracket median {widths[len(widths) // 2]} ns, "
          f"p99 {widths[min(len(widths) - 1, len(widths) * 99 // 100)]} ns, max {widths[-1]} ns; "
          f"L1 clock vs L0 clock drift {(b - 1) * 1e6:+.2f} ppm (least squares)")
    print(f"memsync: {inside} of {len(paired)} tracer times inside their host bracket under that line (+-50 ns)")


def memwrite_of(out, guest):
    text = open(os.path.join(out, guest, "memwrite.txt")).read()
    m = re.search(r"pid=(\d+) buf=(0x[0-9a-f]+) pages=(\d+)", text)
    return int(m.group(1)), int(m.group(2), 16), int(m.group(3))


def check_isolation(out, vmtrace, check, migrated_pid):
    guests = ["l2a", "l2b"] + (["l2m"] if os.path.isdir(os.path.join(out, "l2m", "trace")) else [])
    iso = os.path.join(out, "isolated")
    cmd = [vmtrace, "isolate", os.path.join(out, "l1", "trace"), *(os.path.join(out, g, "trace") for g in guests),
           "--memory", os.path.join(out, "memtrace"), "-o", iso, "--force", "-q", "--tight-bounds"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if not check(proc.returncode == 0, f"vmtrace isolate exits 0 ({proc.returncode}: {proc.stderr.strip()[-300:]})"):
        return
    report = json.load(open(os.path.join(iso, "isolation.json")))
    check(report["records_in"] == report["records_out"] and report["records_in"] > 0,
          f"isolate: records in {report['records_in']} = out {report['records_out']}")
    print("isolate outputs: " + ", ".join(f"{k}={v}" for k, v in report["outputs"].items()))
    stats_path = os.path.join(out, "memtrace-stats.json")
    if os.path.exists(stats_path):
        print("plugin counts: " + open(stats_path).read().strip().replace("\n", " "))

    va = report.get("va_check")
    if not check(va is not None, "isolate: isolation.json measures the join against the tracer's va"):
        return
    print(f"against the tracer's va: {va['guest_attributed_user_va']} user-space accesses attributed to a guest "
          f"process, {va['gva_equals_va']} at the tracer's address; {va['guest_attributed_kernel_va']} guest-kernel "
          f"accesses to the running process's pages; user-space accesses {va['user_va_records']} by attribution "
          f"{va['user_va_by_attribution']}")
    check(va["guest_attributed_user_va"] > 0 and va["precision"] == 1.0,
          f"isolate: precision {va['precision']} ({va['gva_equals_va']}/{va['guest_attributed_user_va']}"
          f"{', first differing: ' + va['first_differing'] if va['first_differing'] else ''})")
    print(f"isolate: recall over the decided user-space accesses of all VMs {va['recall_outside_ambiguous']}")
    for name, v in va.get("by_vm", {}).items():
        print(f"  VM {name}: precision {v['precision']} ({v['gva_equals_va']}/{v['guest_attributed_user_va']}), "
              f"recall outside ambiguous {v['recall_outside_ambiguous']}; user-space accesses by attribution "
              f"{v['user_va_by_attribution']}")
    # l2a is traced from before its window, l2m from after its migration
    # and before its window: their user-space accesses are decided (but for
    # pages mapped without a fault, which no event shows).
    for g in ("l2a", "l2m"):
        if g not in guests:
            continue
        v = va.get("by_vm", {}).get(g)
        check(v is not None and v["recall_outside_ambiguous"] is not None and v["recall_outside_ambiguous"] >= 0.9,
              f"isolate: {g}'s decided user-space accesses at the tracer's address: recall "
              f"{v and v['recall_outside_ambiguous']} (>= 0.9)")
        check_buffer(out, iso, report, g, check)
    if "l2m" in guests:
        pids = [v["vm_pid"] for v in report["vms"] if v["name"] == "l2m"]
        check(migrated_pid is not None and pids == [migrated_pid],
              f"isolate: l2m's accesses go to the VM it was migrated into (vm_pid {pids}, qemu-l2m {migrated_pid})")


def check_buffer(out, iso, report, guest, check):
    """memwrite's buffer: every page in vm-GUEST under its pid at the
    tracer's address, and its host pages nowhere else. grep keeps the
    text small."""
    pid, buf, pages = memwrite_of(out, guest)
    buf_pages, decided_pages, buf_hpa = set(), set(), set()
    span = [None, None]
    # An ambiguous record keeps the join's answer at the access's time: it
    # must name the same process and address too.
    for _, ns, f in events_matching(os.path.join(iso, f"vm-{guest}"), f"pid = {pid},"):
        if f["attribution"] in ("guest", "ambiguous") and f["gva"] == f["va"] and buf <= f["va"] < buf + pages * PAGE:
            buf_pages.add(f["va"] // PAGE)
            buf_hpa.add(f["hpa"] // PAGE)
            span = [ns if span[0] is None else min(span[0], ns), ns if span[1] is None else max(span[1], ns)]
            if f["attribution"] == "guest":
                decided_pages.add(f["va"] // PAGE)
    # Most pages must have a decided access (all in the runs of
    # tests/lab/README.md).
    check(len(buf_pages) == pages and 2 * len(decided_pages) >= pages,
          f"isolate: memwrite's {pages}-page buffer found in vm-{guest} under pid {pid} at the tracer's address "
          f"({len(buf_pages)} pages; {len(decided_pages)} with an access the join decided, at least half required)")
    # While memwrite writes them the pages are its VM's; once that VM has
    # ended, L1 may give them to another (seen: l2a's, unmapped when it
    # exited, mapped by l2b 38 s later and accessed in l2m's window).
    elsewhere, later = collections.Counter(), collections.Counter()
    if buf_hpa:
        pattern = "hpa = 0x(" + "|".join(f"{p:X}" for p in sorted(buf_hpa)) + ")[0-9A-F]{3},"
        for output in report["outputs"]:
            if output != f"vm-{guest}":
                for _, ns, f in events_matching(os.path.join(iso, output), pattern, regex=True):
                    (elsewhere if span[0] <= ns <= span[1] else later)[(output, f["attribution"])] += 1
    check(not elsewhere, f"isolate: no access to the host pages of {guest}'s buffer outside vm-{guest} "
          f"while memwrite wrote them ({dict(elsewhere)}; at other times {dict(later)})")
    per_store = {}
    for name in ("memwrite-closed.txt", "memwrite.txt"):
        path = os.path.join(out, guest, name)
        m = re.search(r"ns_per_store=([0-9.]+)", open(path).read()) if os.path.exists(path) else None
        if m:
            per_store[name] = float(m.group(1))
    if len(per_store) == 2:
        closed, opened = per_store["memwrite-closed.txt"], per_store["memwrite.txt"]
        print(f"{guest}: memwrite {closed:.1f} ns per store with the window closed, {opened:.1f} open "
              f"(open/closed {opened / closed:.2f}; TCG timings: only the ratio means something)")


def events_matching(path, text, regex=False):
    """events() of the lines holding `text` (grep: the outputs hold millions)."""
    grep = subprocess.Popen(["grep", "-E" if regex else "-F", text],
                            stdin=subprocess.Popen(["babeltrace2", "--clock-seconds", path],
                                                   stdout=subprocess.PIPE).stdout,
                            stdout=subprocess.PIPE, text=True)
    for line in grep.stdout:
        event = parse(line)
        if event:
            yield event
    grep.wait()


def check_memory(out, conf, check, vmtrace, migrated_pid=None):
    if conf.get("LAB_MEMTRACER", "0") != "1":
        print("skip  memory tracer checks (LAB_MEMTRACER=0)")
        return
    check(os.path.isdir(os.path.join(out, "memtrace")), "memory trace recorded on L0")
    check_marks(out, check)
    check_isolation(out, vmtrace, check, migrated_pid)
