#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Names the instruction pointers of a lab diagnosis (QEMU's `info registers`).

Usage: resolve-rips.py KALLSYMS_GZ DIAG [TEXT]
KALLSYMS_GZ: L1's text symbols, written by guest-scripts/l1.sh (L1 runs
without KASLR). DIAG: a file holding RIP=... lines. TEXT: the address of
_text in the machine the registers come from, when it is an L2 (same
kernel, with KASLR): its symbols are L1's shifted by the difference.
"""
import bisect
import gzip
import re
import sys


def main():
    syms = []
    text = None
    with gzip.open(sys.argv[1], "rt") as f:
        for line in f:
            w = line.split()
            if len(w) >= 3:
                syms.append((int(w[0], 16), " ".join(w[2:])))
                if w[2] == "_text" and len(w) == 3:
                    text = int(w[0], 16)
    syms.sort()
    addrs = [a for a, _ in syms]
    shift = int(sys.argv[3], 16) - text if len(sys.argv) > 3 and text else 0
    with open(sys.argv[2]) as f:
        rips = sorted(set(re.findall(r"RIP=([0-9a-f]{16})", f.read())))
    for r in rips:
        a = int(r, 16) - shift
        i = bisect.bisect_right(addrs, a) - 1
        if i >= 0 and a - syms[i][0] < 0x10000:
            print(f"RIP={r}: {syms[i][1]}+{a - syms[i][0]:#x}")
        else:
            print(f"RIP={r}: not in this kernel's text (user space, or another machine)")


if __name__ == "__main__":
    main()
