// SPDX-License-Identifier: MIT
// Stands in for liblttng-ctl's lttng_list_tracepoints() through LD_PRELOAD
// in tests/correlator/test_cli_record.py: the kernel tracer "offers" the
// events named in VMTRACE_TEST_OFFERED_EVENTS (comma-separated), so that
// `vmtrace record` passes its check before creating the session and the
// steps after it meet the session daemon's real refusal.  The test seam
// lives here, not in vmtrace.
#include <lttng/lttng.h>
#include <stdlib.h>
#include <string.h>

int lttng_list_tracepoints(struct lttng_handle* handle, struct lttng_event** events) {
    (void)handle;
    const char* names = getenv("VMTRACE_TEST_OFFERED_EVENTS");
    if (names == NULL || *names == '\0') {
        *events = NULL;
        return 0;
    }
    int count = 1;
    for (const char* p = names; *p != '\0'; ++p) {
        count += *p == ',';
    }
    struct lttng_event* list = calloc((size_t)count, sizeof(*list));
    if (list == NULL) {
        return -LTTNG_ERR_NOMEM;
    }
    const char* start = names;
    for (int i = 0; i < count; ++i) {
        const char* end = strchr(start, ',');
        size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
        if (len >= LTTNG_SYMBOL_NAME_LEN) {
            len = LTTNG_SYMBOL_NAME_LEN - 1;
        }
        memcpy(list[i].name, start, len);
        list[i].type = LTTNG_EVENT_TRACEPOINT;
        start = end != NULL ? end + 1 : start + len;
    }
    *events = list;
    return count;
}
