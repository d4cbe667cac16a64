// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bt2/shared_object.hpp"

namespace vmtrace::cli {

// A babeltrace2 graph run in-process: the same components a user would
// connect with `babeltrace2 run`, built through the graph API.
class Pipeline {
public:
    // The error of a failed run, with babeltrace2's causes, deepest first.
    class Failure : public std::runtime_error {
    public:
        Failure(const std::string& what, std::vector<std::string> causes)
            : std::runtime_error(what), causes_(std::move(causes)) {}
        [[nodiscard]] const std::vector<std::string>& causes() const { return causes_; }

    private:
        std::vector<std::string> causes_;
    };

    // `plugin_dir`: where babeltrace-plugin-vmtrace.so is; empty: the
    // system plugin directory.
    explicit Pipeline(const std::string& plugin_dir);

    // Adds a component of class `cls` ("source.ctf.fs",
    // "filter.vmtrace.sync", ...) named `name`; returns its name.
    void add(const std::string& cls, const std::string& name, const bt2::ValueRef& params);

    // Adds a component of a filter class that the command defines itself
    // (no plugin), giving `init_data` to its initialize method.
    void add(const bt_component_class_filter* cls, const std::string& name, void* init_data);

    // Connects every output port of `from` to an input port of `to`: the
    // next unconnected one, so filters that add ports as they are
    // connected (filter.vmtrace.sync, filter.utils.muxer) get them all.
    void connect_all(const std::string& from, const std::string& to);

    // Runs the graph to the end; throws Failure.
    void run();

private:
    const bt_plugin* plugin(const std::string& name);

    std::string plugin_dir_;
    bt2::GraphRef graph_;
    std::map<std::string, bt2::PluginRef> plugins_;
    std::map<std::string, const bt_component*> components_;  // owned by graph_
};

// The deepest cause of the current thread's babeltrace2 error, and all of
// them, deepest first; clears the error.
std::vector<std::string> take_error_causes();

// A babeltrace2 map value, built fluently.
class Params {
public:
    Params();
    Params& set(const char* key, const std::string& value);
    Params& set(const char* key, const char* value) { return set(key, std::string(value)); }
    Params& set(const char* key, std::int64_t value);
    Params& set(const char* key, bool value);
    Params& set(const char* key, const std::vector<std::string>& values);
    [[nodiscard]] const bt2::ValueRef& value() const { return map_; }

private:
    bt2::ValueRef map_;
};

}  // namespace vmtrace::cli
