# SPDX-License-Identifier: GPL-2.0-only
"""The replay log (nondet.jsonl of `vmtrace analyze`) against what l2a's
nondet-reads program got: every value, in the same order, on vCPU 0;
and where the injected timer interrupts landed in the guest."""
import collections
import json
import os
import subprocess

MARKER_PORT = 0xE9
MARK_BEGIN, MARK_END = 0x42, 0x45
LOCAL_TIMER_VECTOR = 0xEC  # Linux's APIC timer vector
# x86-64 Linux: the module area follows the kernel image's 1 GiB.
MODULES_LO, MODULES_HI = 0xFFFFFFFFC0000000, 0xFFFFFFFFFF000000
USER_HI = 0x0000800000000000


def program_reads(path):
    """The program's reads, as (op, address, value) tuples; its notes."""
    reads, notes = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0] in ("pio-in", "mmio-read", "rdmsr"):
                reads.append((words[0], int(words[1], 16), int(words[2], 16)))
            elif words[0] == "rdmsr-fault":
                reads.append(("rdmsr-fault", int(words[1], 16), None))
            else:
                notes[words[0]] = " ".join(words[1:])
    return reads, notes


def log_read(e, ports, gpas, msrs):
    """The program-format tuple of a log entry the program could have made."""
    value = int(e["value"], 16) if e.get("value") else None
    if e["kind"] == "pio" and e["op"] == "in" and e["port"] is not None and int(e["port"], 16) in ports:
        return ("pio-in", int(e["port"], 16), value)
    if e["kind"] == "mmio" and e["op"] == "read" and int(e["gpa"], 16) in gpas:
        return ("mmio-read", int(e["gpa"], 16), value)
    if e["kind"] == "msr" and e["op"] == "rdmsr" and e["index"] is not None and int(e["index"], 16) in msrs:
        if e["value_state"] == "faulted":
            return ("rdmsr-fault", int(e["index"], 16), None)
        return ("rdmsr", int(e["index"], 16), value)
    return None


def check_replay_log(out, check, vmtrace):
    gdir = os.path.join(out, "l2a")
    reads_path = os.path.join(gdir, "nondet-reads.txt")
    if not check(os.path.exists(reads_path), "l2a: nondet-reads wrote down its reads"):
        return
    reads, notes = program_reads(reads_path)
    check(len(reads) >= 100 and "hpet-base" in notes,
          f"l2a: nondet-reads made {len(reads)} reads, the HPET among them ({notes.get('hpet-base') or notes.get('hpet')})")
    adir = os.path.join(out, "replay-analysis")
    guests = [os.path.join(out, g, "trace") for g in ("l2a", "l2b") if os.path.isdir(os.path.join(out, g, "trace"))]
    res = subprocess.run([vmtrace, "analyze", os.path.join(out, "l1", "trace"), *guests, "-o", adir, "-q"],
                         capture_output=True, text=True, timeout=1200)
    if not check(res.returncode == 0, f"vmtrace analyze of the lab's traces for the replay log "
                                      f"(exit {res.returncode}: {res.stderr.strip()[-300:]})"):
        return
    with open(os.path.join(adir, "analysis.json"), encoding="utf-8") as f:
        result = json.load(f)
    vm = next((v for v in result["vms"] if v["name"] == "l2a" or v.get("qemu_comm") == "qemu-l2a"), None)
    if not check(vm is not None, "l2a found in the analysis"):
        return
    entries = []
    with open(os.path.join(adir, "nondet.jsonl"), encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e["vm"] == vm["id"]:
                entries.append(e)
    vcpu0 = [e for e in entries if e["vcpu"] == 0]

    # the window between the program's markers on vCPU 0
    def marker(e, value):
        return (e["kind"] == "pio" and e["op"] == "out" and e["port"] == hex(MARKER_PORT)
                and e["value"] is not None and int(e["value"], 16) & 0xFF == value)
    begins = [i for i, e in enumerate(vcpu0) if marker(e, MARK_BEGIN)]
    ends = [i for i, e in enumerate(vcpu0) if marker(e, MARK_END)]
    if not check(len(begins) == 1 and len(ends) == 1 and begins[0] < ends[0],
                 f"l2a: the program's begin and end markers found once each on vCPU 0 "
                 f"(begin {begins}, end {ends})"):
        return
    window = vcpu0[begins[0] + 1:ends[0]]
    ports = {p for op, p, _ in reads if op == "pio-in"}
    gpas = {a for op, a, _ in reads if op == "mmio-read"}
    msrs = {a for op, a, _ in reads if op in ("rdmsr", "rdmsr-fault")}
    logged = [r for r in (log_read(e, ports, gpas, msrs) for e in window) if r is not None]
    same = sum(1 for a, b in zip(logged, reads) if a == b)
    first_bad = next((i for i, (a, b) in enumerate(zip(logged, reads)) if a != b), None)
    detail = "" if first_bad is None else f"; first difference at read {first_bad}: log {logged[first_bad]}, guest {reads[first_bad]}"
    check(logged == reads,
          f"l2a: replay log equals the guest's own record for {same}/{len(reads)} reads, in order "
          f"({len(logged)} logged in the window{detail})")
    by_op = collections.Counter(r[0] for r in reads)
    how = collections.Counter((e["kind"], e.get("completed_by")) for e in window
                              if log_read(e, ports, gpas, msrs) is not None)
    print(f"      replay log vs guest: {dict(by_op)}; completed by {dict(how)}")
    print(f"      l2a replay log: {vm['replay_log']}")

    # instructions the hypervisor could intercept
    instr = collections.Counter(e["op"] for e in entries if e["kind"] == "instruction")
    print(f"      RDTSC executed by the program: {notes.get('rdtsc', '?')}; RDRAND: {notes.get('rdrand', '?')}; "
          f"intercepted-instruction exits of l2a in the whole log: {dict(instr) or 0}")
    check(all(e["value_state"] == "unknown" for e in entries if e["kind"] == "instruction"),
          "l2a: intercepted RDTSC/RDTSCP/RDPRU/RDRAND exits are logged as unknown values, never 0")

    # timer interrupts: where they landed
    text = int(open(os.path.join(gdir, "text.txt"), encoding="utf-8").read().strip(), 16)
    etext = int(open(os.path.join(gdir, "etext.txt"), encoding="utf-8").read().strip(), 16)
    landed = collections.Counter()
    for e in entries:
        if e["kind"] == "interrupt" and e["vector"] == LOCAL_TIMER_VECTOR and e["value_state"] == "delivered":
            rip = int(e["delivered_rip"], 16)
            landed["kernel text" if text <= rip < etext else "module" if MODULES_LO <= rip < MODULES_HI
                   else "user" if rip < USER_HI else "other"] += 1
    total = sum(landed.values())
    check(total > 0 and landed["kernel text"] > 0 and landed["other"] == 0,
          f"l2a: {total} injected timer interrupts (vector {LOCAL_TIMER_VECTOR:#x}) landed at a guest RIP in the "
          f"kernel's text [{text:#x}, {etext:#x}), a module or user space: {dict(landed)}")
