// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bt2/shared_object.hpp"
#include "cli_common.hpp"

namespace vmtrace::cli {

// A babeltrace2 graph run in-process: the same components a user would
// connect with `babeltrace2 run`, built through the graph API.
class Pipeline {
public:
    // The error of a failed run, with babeltrace2's causes, deepest first,
    // each naming the trace or file the user gave rather than a component.
    class Failure : public CommandError {
    public:
        Failure(const std::string& what, std::vector<std::string> causes, int status = kExitFailure)
            : CommandError(what, status), causes_(std::move(causes)) {}
        [[nodiscard]] const std::vector<std::string>& causes() const { return causes_; }

    private:
        std::vector<std::string> causes_;
    };

    // A babeltrace2 plugin (the vmtrace one, or one of babeltrace2's own)
    // was not found: exit status 3.
    struct PluginNotFound : Failure {
        PluginNotFound(const std::string& what, std::vector<std::string> causes)
            : Failure(what, std::move(causes), kExitNoPlugin) {}
    };

    // `plugin_dir`: where babeltrace-plugin-vmtrace.so is; empty: the
    // system plugin directory.
    explicit Pipeline(const std::string& plugin_dir);

    // Adds a component of class `cls` ("source.ctf.fs",
    // "filter.vmtrace.sync", ...) named `name`.  `where`: what the user
    // knows it by (the trace directory or output it reads or writes); the
    // error messages name that instead of the component (default: the
    // component class).
    void add(const std::string& cls, const std::string& name, const bt2::ValueRef& params,
             const std::string& where = {});

    // Adds a component of a filter class that the command defines itself
    // (no plugin), giving `init_data` to its initialize method.
    void add(const bt_component_class_filter* cls, const std::string& name, void* init_data);

    // Connects every output port of `from` to an input port of `to`: the
    // next unconnected one, so filters that add ports as they are
    // connected (filter.vmtrace.sync, filter.utils.muxer) get them all.
    void connect_all(const std::string& from, const std::string& to);

    // Runs the graph to the end; throws Failure.  A graph whose run failed
    // is never destroyed (see pipeline.cpp): the command reports the error
    // and exits with the graph still alive.
    void run();

    // One step of the graph (a sink's consume): true while there is more,
    // `again` set when a live source had nothing yet.  Throws Failure.
    bool step(bool& again);

    // Runs the graph as run() does, for a graph whose sinks write into
    // `dir`: a failure that the file system there explains (full, read
    // only, permission refused) is reported as that, naming `shown` (what
    // the user asked to write), with exit status 1 for a full disk and 4
    // for the others.
    void run_writing(const std::filesystem::path& dir, const std::string& shown);

private:
    const bt_plugin* plugin(const std::string& name);
    // The current thread's babeltrace2 error causes, deepest first, with
    // component names replaced by what the user knows them by; clears it.
    std::vector<std::string> causes();

    std::string plugin_dir_;
    bt2::GraphRef graph_;
    std::map<std::string, bt2::PluginRef> plugins_;
    std::map<std::string, const bt_component*> components_;  // owned by graph_
    std::map<std::string, std::string> where_;               // component name -> what the user gave
};

// The causes of the current thread's babeltrace2 error, deepest first;
// clears the error.  Each cause from a component starts with what `where`
// maps its name to (the name itself if absent), and babeltrace2's object
// addresses (`comp-addr=0x...`), which tell a user nothing, are removed.
std::vector<std::string> take_error_causes(const std::map<std::string, std::string>& where = {});

// A babeltrace2 map value, built fluently.
class Params {
public:
    Params();
    Params& set(const char* key, const std::string& value);
    Params& set(const char* key, const char* value) { return set(key, std::string(value)); }
    Params& set(const char* key, std::int64_t value);
    Params& set(const char* key, bool value);
    Params& set(const char* key, const std::vector<std::string>& values);
    // A map of names to [FIRST, SECOND] arrays.
    Params& set(const char* key, const std::map<std::string, std::pair<std::int64_t, std::int64_t>>& intervals);
    [[nodiscard]] const bt2::ValueRef& value() const { return map_; }

private:
    bt2::ValueRef map_;
};

}  // namespace vmtrace::cli
