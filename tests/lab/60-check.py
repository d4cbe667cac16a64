#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Checks what the lab recorded, reading the traces with babeltrace2.

Usage: 60-check.py OUT_DIR   (the share's out/ directory)
Prints one line per check and a summary; exits 1 on any breach.
"""
import collections
import os
import re
import subprocess
import sys

from check_memory import check_memory, memwrite_of
from check_live import check_live
from check_replay import check_replay_log

GUESTS = ("l2a", "l2b")
L2_VCPUS = 2
L2_MEM_MB = 320
# SVM exit codes (AMD APM vol. 2, appendix C): intercepts 0x00-0xa4 and the
# nested-paging / VMGEXIT family 0x400-0x403.
SVM_EXIT_CODES = set(range(0x00, 0xa5)) | set(range(0x400, 0x404))
SVM_EXIT_SHUTDOWN = 0x7f
# Guest-physical window of the PC machine above RAM: MMIO and the BIOS ROM.
MMIO_LO, MMIO_HI = 0xfe000000, 0x100000000
OOPS_RE = re.compile(r"Oops|BUG:|WARNING:|Call Trace|general protection|Kernel panic|"
                     r"soft lockup|blocked for more than|rcu_.*stall")

# An event without payload fields (lttng_statedump_start/end) prints "{ }".
LINE_RE = re.compile(r"^\[[^\]]*\] \([^)]*\) (\S+) (\w+): \{ cpu_id = (\d+) \}, \{ ?(.*?) ?\}$")
FIELD_RE = re.compile(r'(\w+) = ("(?:[^"\\]|\\.)*"|[^,]+)')

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


def value(v):
    v = v.strip()
    if v.startswith('"'):
        return v[1:-1]
    try:
        return int(v, 0) if not re.match(r"^0\d", v) else int(v, 8)
    except ValueError:
        return v


def read_trace(path, hostname):
    """List of (name, cpu, fields) in time order; checks the trace's hostname."""
    out = subprocess.run(["babeltrace2", path], capture_output=True, text=True)
    if out.returncode != 0:
        check(False, f"babeltrace2 reads {path}: {out.stderr.strip()[:200]}")
        return []
    events = []
    hosts = set()
    for line in out.stdout.splitlines():
        m = LINE_RE.match(line)
        if not m:
            continue
        hosts.add(m.group(1))
        fields = {k: value(v) for k, v in FIELD_RE.findall(m.group(4))}
        events.append((m.group(2), int(m.group(3)), fields))
    check(hosts == {hostname}, f"{path}: hostname {sorted(hosts)} names the machine ({hostname})")
    return events


def read(path):
    with open(path) as f:
        return f.read()


def no_oops(name, path):
    text = read(path) if os.path.exists(path) else None
    check(text is not None and not OOPS_RE.search(text),
          f"{name}: dmesg has no oops, BUG or warning")


def schema_check(name, trace, emitters, required):
    """Our events must match docs/events.json exactly (the project's checker);
    the traces also hold lttng-modules' events, checked as that emitter's."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checker = os.path.join(repo, "tests", "schema", "check_trace_schema.py")
    if not check(os.path.exists(checker), f"{name}: schema checker {checker} present"):
        return
    res = subprocess.run([sys.executable, checker, os.path.join(trace, "kernel"),
                          *(f"--emitter={e}" for e in emitters.split(",")), "--emitter", "lttng-modules",
                          "--require", *required], capture_output=True, text=True)
    problems = [l for l in (res.stdout + res.stderr).splitlines() if l.strip()]
    check(res.returncode == 0 and not problems,
          f"{name}: our events match docs/events.json ({emitters})"
          + ("" if not problems else ": " + "; ".join(problems[:5])))


def check_hotplug(out, uid, host):
    """l2a loaded the guest module with vCPU 1 offline, then brought vCPU 1
    up and down again under a session with lttng_logger markers."""
    g = "l2a"
    path = os.path.join(out, g, "trace-hotplug")
    if not check(os.path.isdir(path), f"{g}: CPU hotplug trace recorded"):
        return
    ev = read_trace(path, g)
    marks = {f["msg"].strip(): i for i, (n, _, f) in enumerate(ev) if n == "lttng_logger"}
    names = ["lab-cpu1-down", "lab-cpu1-coming", "lab-cpu1-up", "lab-cpu1-going", "lab-cpu1-gone", "lab-end"]
    if not check(all(m in marks for m in names), f"{g}: hotplug markers present ({sorted(marks)})"):
        return

    def gh_on(cpu, first, last):
        return [f["cnt"] for i, (n, c, f) in enumerate(ev)
                if n == "vmsync_gh_guest" and c == cpu and marks[first] < i < marks[last]]
    down = gh_on(1, "lab-cpu1-down", "lab-cpu1-coming")
    up = gh_on(1, "lab-cpu1-up", "lab-cpu1-going")
    gone = gh_on(1, "lab-cpu1-gone", "lab-end")
    cpu0 = gh_on(0, "lab-cpu1-down", "lab-end")
    check(not down, f"{g}: no vmsync handshake on vCPU 1 while it is offline at load ({len(down)})")
    check(len(up) >= 2, f"{g}: vCPU 1, onlined after the module loaded, runs handshakes ({len(up)})")
    check(not gone, f"{g}: vCPU 1 offlined again stops its handshakes ({len(gone)} after)")
    check(len(cpu0) >= 2, f"{g}: vCPU 0 runs handshakes throughout ({len(cpu0)})")
    # The host saw vCPU 1's new handshakes from vCPU 1.
    seen = {f["cnt"]: f["vcpu_id"] for n, _, f in host if n == "vmsync_gh_host" and f["vm_uid"] == uid}
    check(up and all(seen.get(c) == 1 for c in up),
          f"{g}: the host saw vCPU 1's handshakes after it came up from vCPU 1 "
          f"({sum(1 for c in up if seen.get(c) == 1)}/{len(up)})")


def check_both_modules(out):
    """l2b, a KVM guest, loaded kvm_amd and the host module beside the guest
    module (a machine that is both host and guest: the L1 of nesting)."""
    g = "l2b"
    status = read(os.path.join(out, g, "both.txt")).strip() if os.path.exists(os.path.join(out, g, "both.txt")) else ""
    if not check(status == "BOTH-MODULES loaded", f"{g}: host and guest modules loaded together ({status})"):
        return
    listed = read(os.path.join(out, g, "both-events.txt"))
    want = ["vmsync_gh_guest", "vmsync_hg_guest", "vmsync_gh_host", "vmsync_hg_host", "kvm_x86_entry",
            "kvm_vm_vcpu_thread", "guest_mm_map", "guest_mm_unmap"]
    missing = [e for e in want if not re.search(rf"^\s*{e} ", listed, re.M)]
    check(not missing, f"{g}: LTTng lists both modules' events and the vmsync events (missing: {missing})")
    ev = read_trace(os.path.join(out, g, "trace-both"), g)
    gc = collections.Counter(e[0] for e in ev)
    check(gc["vmsync_gh_guest"] > 0 and gc["vmsync_hg_guest"] > 0,
          f"{g}: guest handshakes recorded with the host module loaded ({dict(gc)})")


STATEDUMP_ACCESS = 8  # guest_mm_map.access: the mapping existed when the session started


def check_migration(out, host, vm_by_name, dumped, vmsync_uids):
    """l2m booted in l2m-src and was migrated into l2m while L1's session
    recorded (l1.sh, l2-migrate.sh); its buffer was mapped before the
    migration and its own session started after it."""
    g = "l2m"
    gdir = os.path.join(out, g)
    mig = read(os.path.join(gdir, "migrate.txt")) if os.path.exists(os.path.join(gdir, "migrate.txt")) else ""
    if not check("Migration status: completed" in mig, f"{g}: migrated from l2m-src into l2m"):
        return None
    figures = {k: v.strip() for k, v in re.findall(r"^(total time|downtime|transferred ram|throughput): (.*)$",
                                                    mig, re.M)}
    print(f"{g}: migration " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    src, dst = vm_by_name.get("qemu-l2m-src", set()), vm_by_name.get("qemu-l2m", set())
    if not check(len(src) == 1 and len(dst) == 1 and src != dst,
                 f"identity: l2m-src and l2m are two VMs (pids {sorted(src)}, {sorted(dst)})"):
        return None
    dst_pid = next(iter(dst))
    check("qemu-l2m" not in dumped and "qemu-l2m-src" not in dumped,
          f"identity: both of {g}'s QEMUs were created while tracing (no statedump of them)")
    maps = collections.Counter((f["op"] == 4) for n, _, f in host if n == "kvm_tdp_mmu_map" and f["vm_pid"] == dst_pid)
    check(maps[False] > 0 and maps[True] == 0,
          f"{g}: every mapping of the new VM is a fault after the migration ({maps[False]} installs and "
          f"changes, {maps[True]} from a statedump)")
    uuid = read(os.path.join(out, "l1", f"uuid-{g}")).strip()
    uid = int(read(os.path.join(gdir, "vm_uid")).strip(), 0)
    check(uid == int(uuid.replace("-", "")[:16], 16), f"{g}: vm_uid {uid:#x} derived from product UUID {uuid}")
    check(uid in vmsync_uids, f"{g}: the host saw its vmsync handshakes after the migration")

    ev = read_trace(os.path.join(gdir, "trace"), g)
    gc = collections.Counter(e[0] for e in ev)
    print(f"{g} events: " + ", ".join(f"{k}={v}" for k, v in gc.most_common()))
    pid, buf, pages = memwrite_of(out, g)
    in_buf = [f for n, _, f in ev if n == "guest_mm_map" and f["pid"] == pid and buf <= f["gva"] < buf + pages * 4096]
    dumped_pages = {f["gva"] for f in in_buf if f["access"] & STATEDUMP_ACCESS}
    check(len(dumped_pages) == pages,
          f"{g}: the guest statedump describes the {pages} pages memwrite mapped before the migration "
          f"({len(dumped_pages)}; {len(in_buf) - len(dumped_pages)} faults on them after)")
    no_oops(g, os.path.join(gdir, "dmesg.txt"))
    return dst_pid


def lab_conf(out):
    """The variant the run was (50-run-l1.sh): LAB_HOST_MODULE, LAB_STRESS."""
    conf = {"LAB_HOST_MODULE": "1", "LAB_STRESS": "1"}
    path = os.path.join(out, "lab.conf")
    if os.path.exists(path):
        conf.update(l.strip().split("=", 1) for l in read(path).splitlines() if "=" in l)
    return conf


def main():
    out = sys.argv[1]
    conf = lab_conf(out)
    l1_mem_mb = int(read(os.path.join(out, "l1-mem-mb")))
    host = read_trace(os.path.join(out, "l1", "trace"), "l1")
    counts = collections.Counter(e[0] for e in host)
    print("L1 events: " + ", ".join(f"{k}={v}" for k, v in counts.most_common()))
    if conf["LAB_HOST_MODULE"] == "0":
        # Diagnostic variant: no host events to check.
        print("skip  host module checks (LAB_HOST_MODULE=0: a diagnostic run, not a test of the modules)")
        for g in GUESTS:
            schema_check(g, os.path.join(out, g, "trace"), "kmod-guest",
                         ["vmsync_gh_guest", "vmsync_hg_guest", "guest_mm_map", "guest_mm_unmap"])
            no_oops(g, os.path.join(out, g, "dmesg.txt"))
        if conf["LAB_STRESS"] != "0":
            no_oops("l2s", os.path.join(out, "l2s", "dmesg.txt"))
        no_oops("L1", os.path.join(out, "l1", "dmesg.txt"))
        print(f"checks: {len(failures)} failed")
        return 1 if failures else 0

    memsync = ["vmtrace_memsync_begin", "vmtrace_memsync_end"] if conf.get("LAB_MEMTRACER", "0") == "1" else []
    schema_check("L1", os.path.join(out, "l1", "trace"), "kmod-host,kmod-memsync",
                 ["kvm_x86_entry", "kvm_x86_exit", "kvm_x86_tdp_fault", "kvm_tdp_mmu_map",
                  "kvm_x86_pio", "kvm_x86_mmio", "kvm_x86_msr", "kvm_x86_msr_user", "kvm_x86_inj_virq",
                  "kvm_x86_inj_exception", "kvm_x86_hypercall",
                  "kvm_vm_vcpu_thread", "kvm_vm_statedump_vm", "kvm_vm_statedump_vcpu",
                  "vmsync_gh_host", "vmsync_hg_host", *memsync])
    for g in GUESTS:
        schema_check(g, os.path.join(out, g, "trace"), "kmod-guest",
                     ["vmsync_gh_guest", "vmsync_hg_guest", "guest_mm_map", "guest_mm_unmap"])

    # -- VM identity ----------------------------------------------------
    vm_by_name = {}
    vcpu_tids = collections.defaultdict(set)
    dumped = set()
    for name, _, f in host:
        if name in ("kvm_vm_statedump_vm", "kvm_vm_vcpu_thread"):
            vm_by_name.setdefault(f["vm_comm"], set()).add(f["vm_pid"])
        if name == "kvm_vm_statedump_vm":
            dumped.add(f["vm_comm"])
        if name == "kvm_vm_vcpu_thread" or (name == "kvm_vm_statedump_vcpu" and f["tid"]):
            vcpu_tids[(f["vm_pid"], f["vcpu_id"])].add(f["tid"])
    vm_pid = {}
    for g in GUESTS:
        pids = vm_by_name.get(f"qemu-{g}", set())
        if check(len(pids) == 1, f"identity: one VM named qemu-{g} (pids {sorted(pids)})"):
            vm_pid[g] = pids.pop()
    check("qemu-l2a" in dumped, "identity: the statedump describes qemu-l2a, created before tracing")
    # The host module walks the file tables in a work item that the
    # statedump's start queues; the statedump waits for a work item on every
    # CPU before it ends, so the walk's events come inside the statedump.
    inside, depth = [], 0
    for name, _, _ in host:
        if name == "lttng_statedump_start":
            depth += 1
        elif name == "lttng_statedump_end":
            depth = max(0, depth - 1)
        elif name in ("kvm_vm_statedump_vm", "kvm_vm_statedump_vcpu"):
            inside.append(depth > 0)
    check(inside and all(inside), f"identity: the VM statedump events ({len(inside)}) come between "
          f"lttng_statedump_start and lttng_statedump_end ({inside.count(False)} outside)")
    for g, pid in vm_pid.items():
        have = sorted(v for (p, v) in vcpu_tids if p == pid)
        check(have == list(range(L2_VCPUS)), f"identity: {g} vCPU threads known for vCPUs {have}")
    qemu_pids = set(vm_pid.values())
    # l2m's two QEMUs, the migration's source and target (check_migration).
    for name in ("qemu-l2m-src", "qemu-l2m"):
        qemu_pids |= vm_by_name.get(name, set())

    # -- entries and exits ----------------------------------------------
    bad_vcpu = [e for e in host if "vcpu_id" in e[2] and e[0].startswith(("kvm_x86", "vmsync"))
                and not 0 <= e[2]["vcpu_id"] < L2_VCPUS]
    check(counts["kvm_x86_entry"] > 1000 and counts["kvm_x86_exit"] > 1000,
          f"kvm_x86_entry/exit recorded ({counts['kvm_x86_entry']}/{counts['kvm_x86_exit']})")
    check(not bad_vcpu, f"every vcpu_id in [0, {L2_VCPUS}) ({len(bad_vcpu)} outside)")
    exits = [f for n, _, f in host if n == "kvm_x86_exit"]
    reasons = collections.Counter(f["exit_reason"] for f in exits)
    print("exit reasons: " + ", ".join(f"{r:#x}={c}" for r, c in reasons.most_common()))
    check(all(f["isa"] == 2 for f in exits), "every exit has isa = 2 (SVM)")
    check(set(reasons) <= SVM_EXIT_CODES, f"every exit reason is an SVM exit code "
          f"(others: {sorted(hex(r) for r in set(reasons) - SVM_EXIT_CODES)})")
    check(SVM_EXIT_SHUTDOWN not in reasons, "no guest triple fault (SVM SHUTDOWN exit)")
    check(0x81 in reasons and 0x400 in reasons, "VMMCALL and NPF exits present")

    # -- TDP faults -----------------------------------------------------
    ram = L2_MEM_MB << 20
    faults = [f for n, _, f in host if n == "kvm_x86_tdp_fault"]
    bad = [f for f in faults if f["tdp"] != 1 or f["vm_pid"] not in qemu_pids
           or not (f["gpa"] < ram or MMIO_LO <= f["gpa"] < MMIO_HI)]
    mmio = sum(1 for f in faults if f["gpa"] >= ram)
    check(len(faults) > 100, f"kvm_x86_tdp_fault recorded ({len(faults)}, {mmio} in the MMIO/ROM window)")
    check(not bad, f"every fault GPA inside its guest's RAM or MMIO/ROM window, VM known ({len(bad)} not)")

    # -- GPA->HPA mappings ----------------------------------------------
    maps = [f for n, _, f in host if n == "kvm_tdp_mmu_map"]
    ops = collections.Counter(f["op"] for f in maps)
    max_pfn = l1_mem_mb << 8
    bad_pfn = [f for f in maps if not 0 < f["pfn"] < max_pfn]
    bad_gfn = [f for f in maps if not (f["gfn"] < ram >> 12 or MMIO_LO >> 12 <= f["gfn"] < MMIO_HI >> 12)]
    unattributed = collections.Counter(f["op"] for f in maps if f["vm_pid"] == 0)
    foreign = [f for f in maps if f["vm_pid"] not in qemu_pids | {0}]
    check(ops[1] > 100, f"kvm_tdp_mmu_map: installed {ops[1]}, changed {ops[2]}, removed {ops[3]}")
    check(not bad_pfn, f"every host pfn inside L1's RAM (< {max_pfn:#x}) ({len(bad_pfn)} not)")
    check(not bad_gfn, f"every gfn inside guest RAM or MMIO/ROM window ({len(bad_gfn)} not)")
    check(unattributed[1] == 0 and not foreign,
          f"every mapping names one of the lab's VMs (unattributed by op: {dict(unattributed)}, foreign {len(foreign)})")
    per_vm = collections.Counter(f["vm_pid"] for f in maps if f["op"] == 1)
    check(all(per_vm[p] > 0 for p in qemu_pids), f"installs for every VM {dict(per_vm)}")

    # -- user-space hypercall -------------------------------------------
    forged = [f for n, _, f in host if n.startswith("vmsync") and
              (f["vm_uid"] == 0xbad0bad0 or f["cnt"] == 0xdead)]
    check(not forged, "no vmsync event from the CPL-3 hypercall")

    # -- the VMs' non-deterministic inputs --------------------------------
    pio = [f for n, _, f in host if n == "kvm_x86_pio"]
    bad = [f for f in pio if f["rw"] not in (0, 1) or f["size"] not in (1, 2, 4)
           or f["port"] > 0xffff or f["count"] < 1]
    ports = collections.Counter(f["port"] for f in pio)
    print("kvm_x86_pio ports: " + ", ".join(f"{p:#x}={c}" for p, c in ports.most_common(8)))
    check(len(pio) > 0 and not bad, f"kvm_x86_pio recorded ({len(pio)}; {len(bad)} with a bad direction, size, port or count)")
    # One kvm_pio per IOIO exit (an in that user space completes: at the
    # completion); MSR and VMMCALL exits likewise. The session's start and
    # stop cut a few.
    for what, n, ex in (("kvm_x86_pio", len(pio), 0x7b),
                        ("kvm_x86_msr", counts["kvm_x86_msr"], 0x7c),
                        ("kvm_x86_hypercall", counts["kvm_x86_hypercall"], 0x81)):
        check(abs(n - reasons[ex]) <= max(10, reasons[ex] // 100),
              f"{what}: {n} events for {reasons[ex]} exits with SVM exit code {ex:#x}")
    # The L2 kernels write their console to the 16550 UART at 0x3f8.
    check(any(f["rw"] == 1 and 0x3f8 <= f["port"] <= 0x3ff for f in pio),
          "kvm_x86_pio: the guests' serial console writes (ports 0x3f8-0x3ff) recorded")
    mmio = [f for n, _, f in host if n == "kvm_x86_mmio"]
    bad = [f for f in mmio if f["type"] not in (0, 1, 2) or f["len"] not in (1, 2, 4, 8)
           or not (f["gpa"] >= ram or f["gpa"] < 0x100000)]
    unsatisfied = [f for f in mmio if f["type"] == 0]
    check(len(mmio) > 0 and not bad, f"kvm_x86_mmio recorded ({len(mmio)}, {len(unsatisfied)} reads before "
          f"userspace completed them; {len(bad)} with a bad type, length or a GPA in RAM)")
    check(all(f["val"] == 0 for f in unsatisfied),
          "kvm_x86_mmio: reads not yet satisfied (the kernel passes no value) record 0")
    msr = [f for n, _, f in host if n == "kvm_x86_msr"]
    msr_ranges = ((0, 0x2000), (0x40000000, 0x40000100), (0x4b564d00, 0x4b564e00),
                  (0xc0000000, 0xc0002000), (0xc0010000, 0xc0012000))
    bad = [f for f in msr if f["write"] not in (0, 1) or f["exception"] not in (0, 1)
           or not any(lo <= f["index"] < hi for lo, hi in msr_ranges)]
    kinds = collections.Counter(f["write"] for f in msr)
    check(kinds[0] > 0 and kinds[1] > 0 and not bad,
          f"kvm_x86_msr recorded: rdmsr {kinds[0]}, wrmsr {kinds[1]}, {sum(f['exception'] for f in msr)} #GP; "
          f"{len(bad)} outside the architectural/AMD/KVM MSR ranges "
          f"({sorted({hex(f['index']) for f in bad})[:5]})")
    virq = [f for n, _, f in host if n == "kvm_x86_inj_virq"]
    vectors = collections.Counter(f["vector"] for f in virq)
    print("kvm_x86_inj_virq vectors: " + ", ".join(f"{v:#x}={c}" for v, c in vectors.most_common(8)))
    # Vectors below 32 are the BIOS's (its PIC base is 8) before Linux boots.
    check(all(0 <= f["vector"] <= 255 and f["soft"] in (0, 1) and f["reinjected"] in (0, 1) for f in virq),
          f"kvm_x86_inj_virq recorded ({len(virq)}): vectors, soft and reinjected flags valid")
    check(vectors[0xec] > 0, f"kvm_x86_inj_virq: Linux's local APIC timer (vector 0xec) injected {vectors[0xec]} times")
    hcalls = [f for n, _, f in host if n == "kvm_x86_hypercall"]
    hcall_keys = {(f["a0"], f["a1"]) for f in hcalls}
    vmsync_hc = [f for n, _, f in host if n == "vmsync_gh_host"]
    check(hcalls and all((f["cnt"], f["vm_uid"]) in hcall_keys for f in vmsync_hc),
          f"kvm_x86_hypercall recorded ({len(hcalls)}), one for every vmsync_gh_host ({len(vmsync_hc)})")
    check(sum(1 for f in hcalls if f["a0"] == 0xdead and f["a1"] == 0xbad0bad0) >= len(GUESTS),
          "kvm_x86_hypercall: the refused CPL-3 hypercalls of both guests recorded")

    # -- guests ---------------------------------------------------------
    host_gh = collections.defaultdict(list)
    host_hg = collections.defaultdict(list)
    for i, (n, _, f) in enumerate(host):
        if n == "vmsync_gh_host":
            host_gh[f["vm_uid"]].append((f["cnt"], i))
        elif n == "vmsync_hg_host":
            host_hg[f["vm_uid"]].append((f["cnt"], i))

    uid_of = {}
    for g in GUESTS:
        gdir = os.path.join(out, g)
        uuid = read(os.path.join(out, "l1", f"uuid-{g}")).strip()
        uid = int(read(os.path.join(gdir, "vm_uid")).strip(), 0)
        uid_of[g] = uid
        check(uid == int(uuid.replace("-", "")[:16], 16),
              f"{g}: vm_uid {uid:#x} derived from product UUID {uuid}")
        hc = read(os.path.join(gdir, "hcall-user.txt"))
        check("returned -1\n" in hc, f"{g}: KVM refused the CPL-3 hypercall with -KVM_EPERM ({hc.strip()})")
        log = read(os.path.join(gdir, "l2.log"))
        check(log.count("PARAM-REFUSED") == 3, f"{g}: 3 bad module parameters refused")

        ev = read_trace(os.path.join(gdir, "trace"), g)
        gc = collections.Counter(e[0] for e in ev)
        print(f"{g} events: " + ", ".join(f"{k}={v}" for k, v in gc.most_common()))
        gh = [f["cnt"] for n, _, f in ev if n == "vmsync_gh_guest"]
        hg = [f["cnt"] for n, _, f in ev if n == "vmsync_hg_guest"]
        uids = {f["vm_uid"] for n, _, f in ev if n.startswith("vmsync")}
        check(uids == {uid}, f"{g}: every vmsync event carries vm_uid {uid:#x}")
        hgh = dict(host_gh[uid])
        hhg = dict(host_hg[uid])
        # The session can stop between the two guest events of the last
        # handshake of each vCPU; every earlier one must be complete.
        last = sorted(gh)[-L2_VCPUS:]
        incomplete = [c for c in gh if c not in last and
                      not (c in hg and c in hgh and c in hhg and hgh[c] < hhg[c])]
        complete = [c for c in gh if c in hg and c in hgh and c in hhg]
        check(len(complete) >= 10, f"{g}: {len(complete)} complete vmsync handshakes")
        check(not incomplete, f"{g}: guest->host and host->guest halves present for every handshake "
              f"({len(incomplete)} incomplete: {incomplete[:5]})")
        host_last = sorted(hgh)[-1:] if hgh else []
        check(all(c in hhg for c in hgh if c not in host_last),
              f"{g}: every vmsync_gh_host followed by vmsync_hg_host")

        w = dict(kv.split("=") for kv in read(os.path.join(gdir, "workload.txt")).split())
        pid, buf, pages = int(w["pid"]), int(w["buf"], 16), int(w["pages"])
        maps_g = [f for n, _, f in ev if n == "guest_mm_map"]
        covered = {f["gva"] for f in maps_g if f["pid"] == pid and buf <= f["gva"] < buf + pages * 4096}
        check(len(covered) == pages, f"{g}: guest_mm_map covers {len(covered)}/{pages} pages of the workload buffer")
        check(all(f["gpa"] < ram and f["gva"] % 4096 == 0 for f in maps_g),
              f"{g}: every guest_mm_map GPA inside guest RAM ({len(maps_g)} maps)")
        unm = [f for n, _, f in ev if n == "guest_mm_unmap" and f["pid"] == pid]
        check(any(f["reason"] == 0 and f["start"] <= buf and buf + pages * 4096 <= f["end"] for f in unm),
              f"{g}: the workload's munmap ends the buffer's mappings")
        check(any(f["reason"] == 1 for f in unm), f"{g}: the workload's exit ends its mappings")
        check(any(f["reason"] == 2 for f in unm), f"{g}: the workload's execve ends the mappings it inherited")
        child_maps = {f["pid"] for f in maps_g if f["pid"] != pid and buf <= f["gva"] < buf + pages * 4096}
        check(bool(child_maps), f"{g}: the forked child's COW faults on the buffer recorded (pids {sorted(child_maps)})")
        check(gc["sched_migrate_task"] > 0 and gc["sched_switch"] > 0,
              f"{g}: sched_switch ({gc['sched_switch']}) and sched_migrate_task ({gc['sched_migrate_task']}) recorded")
        no_oops(g, os.path.join(gdir, "dmesg.txt"))

    check_hotplug(out, uid_of.get("l2a"), host)
    check_both_modules(out)
    migrated_pid = None
    if conf.get("LAB_MEMTRACER", "0") == "1":
        migrated_pid = check_migration(out, host, vm_by_name, dumped, set(host_gh))

    # -- robustness and overhead (l2s) ----------------------------------
    build = os.environ.get("VMTRACE_BUILD_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                                 "..", "build")
    check_memory(out, conf, check, os.path.join(build, "vmtrace"), migrated_pid)
    check_replay_log(out, check, os.path.join(build, "vmtrace"))
    if conf.get("LAB_LIVE", "1") == "1":
        check_live(out, check, os.path.join(build, "vmtrace"), uid_of)
    else:
        print("skip  the live view (LAB_LIVE=0: tests/lab/README.md, \"The live view\")")

    if conf["LAB_STRESS"] == "0":
        print("skip  benchmark and load/unload robustness (LAB_STRESS=0)")
        no_oops("L1", os.path.join(out, "l1", "dmesg.txt"))
        print(f"checks: {len(failures)} failed")
        return 1 if failures else 0
    sdir = os.path.join(out, "l2s")
    l1log = read(os.path.join(out, "l1.sh.log")) if os.path.exists(os.path.join(out, "l1.sh.log")) else ""
    slog = read(os.path.join(sdir, "l2.log")) if os.path.exists(os.path.join(sdir, "l2.log")) else ""
    check("PARAM-REFUSED lttng-probe-vmtrace-guest" in l1log,
          "L1 (TCG, not KVM): the guest module refused to load, saying why in dmesg")
    check("robustness done" in l1log, "host module unloaded and reloaded 8 times during the exit storm, L2 vCPUs kept running")
    check("UNLOAD-REFUSED-WHILE-TRACED host" in l1log, "host module cannot be unloaded while a session records its events")
    check("UNLOAD-REFUSED-WHILE-TRACED guest" in slog, "guest module cycled 8 times under an exit storm, refused to unload while traced")
    no_oops("l2s", os.path.join(sdir, "dmesg.txt"))
    cost = {}
    for phase in (1, 2, 3, 4):
        runs = []
        for r in (1, 2, 3):
            path = os.path.join(sdir, f"bench-{r}-{phase}.txt")
            m = re.search(r"([0-9.]+) ns per call", read(path)) if os.path.exists(path) else None
            if m:
                runs.append(float(m.group(1)))
        if check(len(runs) == 3, f"benchmark phase {phase} measured in 3 rounds {runs}"):
            cost[phase] = sorted(runs)[1]
    if len(cost) == 4:
        print("overhead, median of 3 rounds of one user-space hypercall (one exit + one entry)")
        print("(TCG timings, not hardware: only the ratios mean something):")
        print(f"  host events recorded: {cost[1]:.0f} ns; session stopped: {cost[2]:.0f} ns; "
              f"host module unloaded: {cost[3]:.0f} ns")
        print(f"  recorded/stopped = {cost[1] / cost[2]:.2f}, stopped/unloaded = {cost[2] / cost[3]:.2f}, "
              f"recorded/unloaded = {cost[1] / cost[3]:.2f}")
        if conf.get("LAB_MEMTRACER", "0") == "1":
            # Phases 3 and 4 differ by the window alone (host module unloaded
            # in both); the plugin's closed-window cost is the ratio of
            # phase 3 to the same phase of a LAB_MEMTRACER=0 run.
            print(f"  memory tracer (L0's plugin, sample {conf.get('LAB_MEMTRACE_SAMPLE', '?')}): window open "
                  f"{cost[4]:.0f} ns, closed {cost[3]:.0f} ns: open/closed = {cost[4] / cost[3]:.2f} per exit")

    no_oops("L1", os.path.join(out, "l1", "dmesg.txt"))
    print(f"checks: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
