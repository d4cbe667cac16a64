/* Output of the plugin's counts: a summary line and the stats=PATH JSON. */
#include "counts.h"

#include <inttypes.h>

void format_counts_line(const struct plugin_counts* c, char* buf, size_t size) {
    snprintf(buf, size,
             "vmtrace-mem-qemu: seen %" PRIu64 ", recorded %" PRIu64 ", lost %" PRIu64 ", io %" PRIu64
             ", marks %" PRIu64 ", windows %" PRIu64 ", outside window %" PRIu64 ", sampled out %" PRIu64
             ", filtered %" PRIu64 ", controls %" PRIu64,
             c->seen, c->recorded, c->lost, c->io, c->marks, c->windows, c->outside_window, c->sampled_out, c->filtered,
             c->controls);
}

bool write_counts_json(FILE* f, const struct plugin_counts* c, const struct plugin_args* a) {
    fprintf(f, "{\n");
    fprintf(f, "  \"mode\": \"%s\",\n", a->mode_all ? "all" : "window");
    if (a->has_sync)
        fprintf(f, "  \"sync\": %" PRIu64 ",\n", a->sync_base);
    else
        fprintf(f, "  \"sync\": null,\n");
    fprintf(f, "  \"sample\": %" PRIu64 ",\n", a->sample);
    fprintf(f, "  \"guest_only\": %s,\n", a->guest_only ? "true" : "false");
#define FIELD(name) fprintf(f, "  \"" #name "\": %" PRIu64 ",\n", c->name)
    FIELD(seen);
    FIELD(recorded);
    FIELD(lost);
    FIELD(io);
    FIELD(marks);
    FIELD(controls);
    FIELD(outside_window);
    FIELD(filtered);
    FIELD(sampled_out);
    FIELD(windows);
    FIELD(opens_when_open);
    FIELD(closes_when_closed);
    FIELD(mark_resets);
    FIELD(vmruns);
    FIELD(guest_exits);
    FIELD(missed_exits);
    FIELD(vmrun_sites_dropped);
#undef FIELD
    fprintf(f, "  \"window_open_at_exit\": %s\n}\n", c->window_open_at_exit ? "true" : "false");
    return fflush(f) == 0 && !ferror(f);
}
