/*
 * Feeds libvmtrace-mem from text, one call per line of stdin, the way an
 * importer of another tracer's records would: the test chooses every value
 * and compares the trace with what it fed.
 *
 *   access CPU HPA SIZE KIND VA
 *   lost COUNT
 *   sync CNT HPA CPU
 *   open WINDOW
 *   close WINDOW RECORDED LOST
 *   enabled                      prints 1 or 0: vmtrace_mem_access_enabled()
 *
 * Numbers are decimal or 0x-hexadecimal.  A bad line: one message naming its
 * number on stderr, exit status 2.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace/mem_tracer.h"

/* Parses `count` numbers after the command word into out[], each at most max. */
static int numbers(char* rest, unsigned count, uint64_t max, uint64_t* out) {
    for (unsigned i = 0; i < count; ++i) {
        char* end = NULL;
        errno = 0;
        while (*rest == ' ') {
            ++rest;
        }
        if (*rest == '\0' || *rest == '-') {
            return -1;
        }
        out[i] = strtoull(rest, &end, 0);
        if (errno != 0 || end == rest || (*end != ' ' && *end != '\0') || out[i] > max) {
            return -1;
        }
        rest = end;
    }
    while (*rest == ' ') {
        ++rest;
    }
    return *rest == '\0' ? 0 : -1;
}

static int feed(char* line) {
    uint64_t v[5];
    char* rest = strchr(line, ' ');
    if (rest != NULL) {
        *rest++ = '\0';
    } else {
        rest = line + strlen(line);
    }
    if (strcmp(line, "access") == 0) {
        /* Each field at its own width: a too-large value is the test's mistake, not truncated. */
        if (numbers(rest, 5, UINT64_MAX, v) != 0 || v[0] > UINT32_MAX || v[2] > UINT8_MAX || v[3] > UINT8_MAX) {
            return -1;
        }
        vmtrace_mem_access((uint32_t)v[0], v[1], (uint8_t)v[2], (uint8_t)v[3], v[4]);
    } else if (strcmp(line, "lost") == 0) {
        if (numbers(rest, 1, UINT64_MAX, v) != 0) {
            return -1;
        }
        vmtrace_mem_lost(v[0]);
    } else if (strcmp(line, "sync") == 0) {
        if (numbers(rest, 3, UINT64_MAX, v) != 0 || v[0] > UINT32_MAX || v[2] > UINT32_MAX) {
            return -1;
        }
        vmtrace_mem_sync((uint32_t)v[0], v[1], (uint32_t)v[2]);
    } else if (strcmp(line, "open") == 0) {
        if (numbers(rest, 1, UINT32_MAX, v) != 0) {
            return -1;
        }
        vmtrace_mem_window_open((uint32_t)v[0]);
    } else if (strcmp(line, "close") == 0) {
        if (numbers(rest, 3, UINT64_MAX, v) != 0 || v[0] > UINT32_MAX) {
            return -1;
        }
        vmtrace_mem_window_close((uint32_t)v[0], v[1], v[2]);
    } else if (strcmp(line, "enabled") == 0 && *rest == '\0') {
        printf("%d\n", vmtrace_mem_access_enabled() ? 1 : 0);
        fflush(stdout);
    } else {
        return -1;
    }
    return 0;
}

int main(void) {
    char line[512];
    unsigned long number = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        ++number;
        line[strcspn(line, "\n")] = '\0';
        char copy[sizeof line];
        memcpy(copy, line, sizeof line);
        if (feed(line) != 0) {
            fprintf(stderr, "mem_tracer_feed: line %lu: cannot read `%s`\n", number, copy);
            return 2;
        }
    }
    return 0;
}
