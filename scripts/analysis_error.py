#!/usr/bin/env python3
"""Compares `vmtrace analyze`'s results on a simulated recording with the
simulator's ground truth: vCPU state durations (exact: host events only),
exit counts, migrations and logged events (exact), and the guest-mode time
of each guest thread (placed through the synchronised guest events).

Prints one line per VM; exits 1 when an exact figure differs."""
import json
import sys

STATES = ["guest", "hypervisor", "preempted", "idle"]


def main(truth_path, analysis_path):
    with open(truth_path, encoding="utf-8") as f:
        truth = json.load(f)
    with open(analysis_path, encoding="utf-8") as f:
        result = json.load(f)
    vms = {vm["name"]: vm for vm in result["vms"]}
    failed = False
    for g, guest in enumerate(truth["guests"]):
        vm = vms.get(guest["hostname"])
        if vm is None:
            print(f"{guest['hostname']}: not found in the analysis")
            failed = True
            continue
        state_errors = 0
        exit_errors = 0
        for total in (t for t in truth["totals"] if t["guest"] == g):
            v = next(v for v in vm["vcpus"] if v["vcpu"] == total["vcpu"])
            state_errors += sum(abs(v["states_ns"][s] - total[f"{s}_ns"]) for s in STATES)
            got = {e["code"]: e["count"] for e in vm["exits"] if e["vcpu"] == total["vcpu"]}
            exit_errors += sum(abs(got.get(int(k, 16), 0) - n) for k, n in total["exits"].items())
        counts = truth["guest_counts"][g]
        nondet_ok = all(vm["nondet"].get(k) == n for k, n in counts["nondet"].items())
        migrations_ok = vm["guest_migrations"]["matrix"] == counts["guest_migrations"]
        truth_threads = {(t["tid"], t["vcpu"]): t["guest_ns"] for t in counts["guest_thread_ns"]}
        got_threads = {(t["tid"], int(v)): ns for t in vm["guest_threads"] for v, ns in t["guest_ns_by_vcpu"].items()}
        thread_error = max(abs(got_threads.get(k, 0) - ns) for k, ns in truth_threads.items())
        exact = state_errors == 0 and exit_errors == 0 and nondet_ok and migrations_ok
        failed = failed or not exact
        print(f"{guest['hostname']}: vCPU state time error {state_errors} ns, exit count error {exit_errors}, "
              f"logged events {'exact' if nondet_ok else 'WRONG'}, guest migrations "
              f"{'exact' if migrations_ok else 'WRONG'}; guest-thread time error max {thread_error / 1e3:.1f} us "
              f"over {len(truth_threads)} threads (sync bound {vm['sync']['bound_ns'] / 1e3:.1f} us per switch)")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: analysis_error.py GROUND_TRUTH.json ANALYSIS.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
