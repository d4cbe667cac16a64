/* Argument parsing of the QEMU plugin: strict, one clear line per error. */
#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whole-string unsigned number, decimal or 0x-prefixed hexadecimal. */
static bool parse_u64(const char* s, uint64_t* out) {
    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return false;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (*s == '\0')
            return false;
    }
    errno = 0;
    char* end = NULL;
    unsigned long long v = strtoull(s, &end, base);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool parse_plugin_args(int argc, char** argv, struct plugin_args* out, char* err, size_t err_size) {
    memset(out, 0, sizeof *out);
    out->sample = 1;
    bool seen_mode = false, seen_sample = false, seen_guest = false;

    for (int i = 0; i < argc; i++) {
        const char* arg = argv[i];
        const char* eq = strchr(arg, '=');
        if (eq == NULL) {
            snprintf(err, err_size, "argument '%s' is not ARG=VALUE (arguments: mode, sync, sample, guest-only, stats)",
                     arg);
            return false;
        }
        size_t name_len = (size_t)(eq - arg);
        const char* val = eq + 1;
#define IS(name) (name_len == strlen(name) && strncmp(arg, name, name_len) == 0)
        bool twice = false;
        if (IS("mode")) {
            twice = seen_mode;
            seen_mode = true;
            if (strcmp(val, "all") == 0)
                out->mode_all = true;
            else if (strcmp(val, "window") == 0)
                out->mode_all = false;
            else {
                snprintf(err, err_size, "bad argument mode=%s: must be all or window", val);
                return false;
            }
        } else if (IS("sync")) {
            twice = out->has_sync;
            uint64_t base = 0;
            if (!parse_u64(val, &base)) {
                snprintf(err, err_size, "bad argument sync=%s: not a physical address (decimal or 0x-hexadecimal)",
                         val);
                return false;
            }
            if (base % VMTRACE_RESERVED_PAGE != 0) {
                snprintf(err, err_size, "bad argument sync=%s: the reserved area must be 4096-byte aligned", val);
                return false;
            }
            if (base > UINT64_MAX - VMTRACE_RESERVED_SIZE) {
                snprintf(err, err_size, "bad argument sync=%s: the reserved area (8 KiB) passes the end of memory",
                         val);
                return false;
            }
            out->has_sync = true;
            out->sync_base = base;
        } else if (IS("sample")) {
            twice = seen_sample;
            seen_sample = true;
            uint64_t n = 0;
            if (!parse_u64(val, &n) || n < 1 || n > UINT32_MAX) {
                snprintf(err, err_size, "bad argument sample=%s: N must be an integer from 1 to %" PRIu32, val,
                         UINT32_MAX);
                return false;
            }
            out->sample = n;
        } else if (IS("guest-only")) {
            twice = seen_guest;
            seen_guest = true;
            if (strcmp(val, "on") == 0)
                out->guest_only = true;
            else if (strcmp(val, "off") == 0)
                out->guest_only = false;
            else {
                snprintf(err, err_size, "bad argument guest-only=%s: must be on or off", val);
                return false;
            }
        } else if (IS("stats")) {
            twice = out->stats != NULL;
            if (*val == '\0') {
                snprintf(err, err_size, "bad argument stats=: the path is empty");
                return false;
            }
            out->stats = val;
        } else {
            snprintf(err, err_size, "unknown argument '%.*s' (arguments: mode, sync, sample, guest-only, stats)",
                     (int)name_len, arg);
            return false;
        }
#undef IS
        if (twice) {
            snprintf(err, err_size, "argument '%.*s' given twice", (int)name_len, arg);
            return false;
        }
    }
    if (!out->mode_all && !out->has_sync) {
        snprintf(err, err_size, "mode=window needs sync=BASE (the reserved area's physical address), or use mode=all");
        return false;
    }
    return true;
}
