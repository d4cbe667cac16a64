// SPDX-License-Identifier: MIT
#pragma once

#include <string>

namespace vmtrace::cli {

// Checks one CTF trace directory before src.ctf.fs reads it, for what
// babeltrace2 2.0.4 handles badly:
// - a packetized metadata file whose last packet is cut short, or whose
//   packet header is damaged (magic 0x75D11D57, sizes): the reader loops
//   forever on it (plain `babeltrace2` too);
// - no stream file with data beside the metadata: src.ctf.fs reads an empty
//   trace without a word and the machine silently drops out of the results;
// - a FIFO, device or socket among the trace's files: reading one blocks
//   or never ends.
// Throws ProcessingError naming the file (exit status 1), SystemError when
// a file cannot be read for lack of permission (4).
void check_trace_dir(const std::string& dir);

}  // namespace vmtrace::cli
