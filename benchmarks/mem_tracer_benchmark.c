/*
 * The cost of one libvmtrace-mem call, in ns: vmtrace_mem_access() and
 * vmtrace_mem_access_enabled() against an empty loop measured in the same
 * process, each the best of several rounds.  Whether the event is enabled
 * depends on the session around the process: benchmarks/
 * mem_tracer_benchmark.py runs this once without and once with one.
 *
 *   mem_tracer_benchmark [CALLS_PER_ROUND [ROUNDS]]
 *
 * Prints one JSON object on stdout.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vmtrace/mem_tracer.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Keeps the compiler from removing or merging the loop bodies. */
#define BARRIER(v) __asm__ volatile("" : "+r"(v))

static double empty_loop(uint64_t calls) {
    const double start = now_ns();
    for (uint64_t i = 0; i < calls; ++i) {
        uint64_t hpa = 0x100000000ull + i * 64;
        BARRIER(hpa);
    }
    return (now_ns() - start) / (double)calls;
}

static double access_loop(uint64_t calls) {
    const double start = now_ns();
    for (uint64_t i = 0; i < calls; ++i) {
        uint64_t hpa = 0x100000000ull + i * 64;
        BARRIER(hpa);
        vmtrace_mem_access((uint32_t)(i & 3), hpa, 8, VMTRACE_MEM_STORE, 0x7f0000000000ull + i * 64);
    }
    return (now_ns() - start) / (double)calls;
}

static double enabled_loop(uint64_t calls, uint64_t* seen) {
    const double start = now_ns();
    uint64_t n = 0;
    for (uint64_t i = 0; i < calls; ++i) {
        n += vmtrace_mem_access_enabled();
        BARRIER(n);
    }
    *seen = n;
    return (now_ns() - start) / (double)calls;
}

static double min(double a, double b) {
    return a < b ? a : b;
}

int main(int argc, char** argv) {
    const uint64_t calls = argc > 1 ? strtoull(argv[1], NULL, 0) : 200000;
    const unsigned rounds = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 5;
    if (calls == 0 || rounds == 0) {
        fprintf(stderr, "usage: mem_tracer_benchmark [CALLS_PER_ROUND [ROUNDS]] (both > 0)\n");
        return 2;
    }
    double empty = 1e30, access = 1e30, enabled = 1e30;
    uint64_t seen = 0;
    for (unsigned r = 0; r < rounds; ++r) {
        empty = min(empty, empty_loop(calls));
        access = min(access, access_loop(calls));
        enabled = min(enabled, enabled_loop(calls, &seen));
    }
    printf(
        "{\"enabled\": %s, \"calls\": %llu, \"rounds\": %u, \"empty_ns\": %.3f, \"access_ns\": %.3f, "
        "\"enabled_check_ns\": %.3f}\n",
        seen == calls ? "true" : "false", (unsigned long long)(calls * rounds), rounds, empty, access, enabled);
    return 0;
}
