// SPDX-License-Identifier: MIT
#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline.hpp"

namespace vmtrace::cli {

// What the commands that read traces and run filter.vmtrace.sync (sync,
// analyze, export) share.

// The options of filter.vmtrace.sync that every command running it
// (sync, analyze, export) takes: --window-ms, --prefetch-ms, --host,
// --lenient.
boost::program_options::options_description sync_filter_options();

// The choice of `vmtrace sync`'s and `export`'s path (docs/clock-sync.md):
// --rewrite-events, --verify.  Without either, the fast path.
boost::program_options::options_description sync_path_options();

// Parses `args` against `options`; the positional arguments are the
// trace directories, under the name "traces".
boost::program_options::variables_map parse_with_traces(const std::vector<std::string>& args,
                                                        const boost::program_options::options_description& options);

// Refuses (UsageError, exit status 2) option values out of the ranges
// filter.vmtrace.sync accepts, naming the option: --window-ms 0..3600000,
// --prefetch-ms 1..3600000.
void check_sync_options(const boost::program_options::variables_map& vm);

// Refuses an integer option `name` outside [min, max], naming it.
void check_range(const boost::program_options::variables_map& vm, const char* name, std::int64_t min, std::int64_t max,
                 const char* why = nullptr);

// filter.vmtrace.sync's parameters from those options; `stats`: where it
// writes its statistics; `quiet`: no summary; `progress`: its progress
// line, shown only when stderr is a terminal.
Params sync_filter_params(const boost::program_options::variables_map& vm, const std::string& stats, bool quiet,
                          bool progress);

}  // namespace vmtrace::cli
