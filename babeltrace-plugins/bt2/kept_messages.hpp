// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>

namespace vmtrace::bt2 {

// Keeps, reachable for the rest of the process, the `count` messages a
// filter already placed in a batch that an error cuts short.  An error
// status hands babeltrace2 none of them; putting them lets babeltrace2
// 2.0.4 free their packets and streams before sink.ctf.fs is finalised,
// and that sink then crashes in its teardown after the error (seen here:
// SIGSEGV in test_sync_bad_input's failing graphs).  vmtrace keeps a
// failed graph alive for the same reason (correlator/pipeline.cpp).
void keep_after_error(bt_message_array_const messages, std::uint64_t count);

}  // namespace vmtrace::bt2
